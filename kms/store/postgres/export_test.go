package postgres

// RoundTripsForTest returns how many statements (each one round trip to the
// server) the transactions of s have sent so far.
func RoundTripsForTest(s *Store) int64 { return s.roundTrips.Load() }

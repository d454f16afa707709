//go:build race

package main

// raceDetector: the race detector is on, and multiplies the memory a
// process uses (by 2 to 5, per its documentation; 3.8 measured for serve
// under attack).
const raceDetector = true

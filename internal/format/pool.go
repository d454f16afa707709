package format

// jobPool recycles the jobs of a pipeline and bounds how many exist, which
// bounds the memory in flight.
type jobPool[J any] struct {
	free chan *J
	made int
}

// newJobPool returns a pool of at most size jobs, made of which already
// exist outside it.
func newJobPool[J any](size, made int) *jobPool[J] {
	return &jobPool[J]{free: make(chan *J, size), made: made}
}

// size is the most jobs that exist.
func (p *jobPool[J]) size() int { return cap(p.free) }

// get returns a job put back, or a new (zero) one while fewer than size
// exist; at the bound it waits for one to be put back, or returns nil once
// stop is closed (a nil stop never is). Only one goroutine may call get.
func (p *jobPool[J]) get(stop <-chan struct{}) *J {
	if p.made < cap(p.free) {
		select {
		case j := <-p.free:
			return j
		default:
			p.made++
			return new(J)
		}
	}
	select {
	case j := <-p.free:
		return j
	case <-stop:
		return nil
	}
}

// put gives a job back for reuse. It never blocks: at most size jobs exist.
func (p *jobPool[J]) put(j *J) {
	select {
	case p.free <- j:
	default:
	}
}

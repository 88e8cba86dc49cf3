package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Job states reported by the service.
const (
	StatusRunning = "running"
	StatusDone    = "done"
)

// maxDuration and maxWait cap the client-chosen job duration and long-poll wait.
const (
	maxDuration = time.Minute
	maxWait     = time.Minute
)

// Status is the JSON body of every job response.
type Status struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Result string `json:"result,omitempty"`
}

// Service is an in-memory job service. Jobs are simulated: each finishes after its
// duration. Handlers:
//
//	POST /jobs[?duration=1s]   submit; 202 with the new job's Status and a Location
//	GET  /jobs/{id}            status now (short polling)
//	GET  /jobs/{id}?wait=30s   hold until the job is done or the wait ends (long polling)
//
// Jobs are kept in memory for the life of the Service.
type Service struct {
	duration time.Duration
	mux      *http.ServeMux
	closing  chan struct{}

	mu     sync.Mutex
	jobs   map[string]*job
	nextID int
	closed bool
}

// job is one submitted job; done is closed when it finishes.
type job struct {
	id     string
	timer  *time.Timer
	done   chan struct{}
	result string
}

// NewService returns a service whose jobs take duration unless the submitter asks
// otherwise.
func NewService(duration time.Duration) *Service {
	s := &Service{duration: duration, mux: http.NewServeMux(), closing: make(chan struct{}), jobs: make(map[string]*job)}
	s.mux.HandleFunc("POST /jobs", s.submit)
	s.mux.HandleFunc("GET /jobs/{id}", s.status)
	return s
}

// ServeHTTP serves the job API. Each response carries X-Backend-Proto, the protocol the
// request arrived with, to show that the proxy speaks HTTP/2 to the service.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Backend-Proto", r.Proto)
	s.mux.ServeHTTP(w, r)
}

// Close stops unfinished jobs and releases every held long poll.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, j := range s.jobs {
		j.timer.Stop()
	}
	close(s.closing)
}

// submit handles POST /jobs: it starts a job whose timer marks it done after its duration.
func (s *Service) submit(w http.ResponseWriter, r *http.Request) {
	d := s.duration
	if v := r.URL.Query().Get("duration"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < 0 || d > maxDuration {
			http.Error(w, "duration: want 0 to "+maxDuration.String(), http.StatusBadRequest)
			return
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.nextID++
	j := &job{id: strconv.Itoa(s.nextID), done: make(chan struct{})}
	s.jobs[j.id] = j
	j.timer = time.AfterFunc(d, func() { s.finish(j, fmt.Sprintf("job %s finished after %s", j.id, d)) })
	st := s.statusLocked(j)
	s.mu.Unlock()
	w.Header().Set("Location", "/jobs/"+j.id)
	writeJSON(w, http.StatusAccepted, st)
}

// finish marks j done with result.
func (s *Service) finish(j *job, result string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j.result = result
	close(j.done)
}

// status handles GET /jobs/{id}, holding the request first when ?wait= is given.
func (s *Service) status(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	j := s.jobs[r.PathValue("id")]
	s.mu.Unlock()
	if j == nil {
		http.Error(w, "no such job", http.StatusNotFound)
		return
	}
	if v := r.URL.Query().Get("wait"); v != "" {
		wait, err := time.ParseDuration(v)
		if err != nil || wait < 0 || wait > maxWait {
			http.Error(w, "wait: want 0 to "+maxWait.String(), http.StatusBadRequest)
			return
		}
		t := time.NewTimer(wait)
		select { // hold the request: this is the long poll
		case <-j.done:
		case <-t.C:
		case <-r.Context().Done():
		case <-s.closing:
		}
		t.Stop()
	}
	s.mu.Lock()
	st := s.statusLocked(j)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

// statusLocked reports j; s.mu must be held.
func (s *Service) statusLocked(j *job) Status {
	select {
	case <-j.done:
		return Status{ID: j.id, Status: StatusDone, Result: j.result}
	default:
		return Status{ID: j.id, Status: StatusRunning}
	}
}

// writeJSON writes v as a JSON response with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

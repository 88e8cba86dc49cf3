package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// submit posts a job that takes duration and returns its status.
func submit(ctx context.Context, c *http.Client, base string, duration time.Duration) (Status, error) {
	return call(ctx, c, http.MethodPost, base+"/jobs?duration="+url.QueryEscape(duration.String()), http.StatusAccepted)
}

// shortPoll asks for the job's status every interval until it is done, and returns the
// final status and how many requests it took.
func shortPoll(ctx context.Context, c *http.Client, base, id string, interval time.Duration, each func(n int, st Status)) (Status, int, error) {
	for n := 1; ; n++ {
		st, err := call(ctx, c, http.MethodGet, base+"/jobs/"+url.PathEscape(id), http.StatusOK)
		if err != nil {
			return st, n, err
		}
		if each != nil {
			each(n, st)
		}
		if st.Status == StatusDone {
			return st, n, nil
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return st, n, ctx.Err()
		}
	}
}

// longPoll asks for the job's status with ?wait=wait, repeating while the job is still
// running when a wait ends; it returns the final status and how many requests it took.
func longPoll(ctx context.Context, c *http.Client, base, id string, wait time.Duration) (Status, int, error) {
	u := base + "/jobs/" + url.PathEscape(id) + "?wait=" + url.QueryEscape(wait.String())
	for n := 1; ; n++ {
		st, err := call(ctx, c, http.MethodGet, u, http.StatusOK)
		if err != nil || st.Status == StatusDone {
			return st, n, err
		}
	}
}

// call does one request and decodes the Status it returns; the response must be
// HTTP/1.1 from the proxy and must have reached the backend over HTTP/2.
func call(ctx context.Context, c *http.Client, method, u string, want int) (Status, error) {
	var st Status
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return st, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return st, fmt.Errorf("%s %s: %s", method, u, resp.Status)
	}
	if resp.Proto != "HTTP/1.1" || resp.Header.Get("X-Backend-Proto") != "HTTP/2.0" {
		return st, fmt.Errorf("%s %s: client got %s, backend saw %q; want HTTP/1.1 in front of HTTP/2.0",
			method, u, resp.Proto, resp.Header.Get("X-Backend-Proto"))
	}
	if resp.StatusCode >= 300 {
		return st, nil // an expected error status carries no Status
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Event is one server-sent event as the client received it.
type Event struct {
	ID, Type, Data string
	Received       time.Time
}

// subscribe GETs url as an event stream and calls each for every event, in order,
// until the stream ends (nil), ctx ends or each returns false. lastID, if not empty,
// is sent as Last-Event-ID.
func subscribe(ctx context.Context, c *http.Client, url, lastID string, each func(Event) bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return fmt.Errorf("GET %s: %s, %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	if resp.Proto != "HTTP/1.1" || resp.Header.Get("X-Backend-Proto") != "HTTP/2.0" {
		return fmt.Errorf("client got %s, backend saw %q; want HTTP/1.1 in front of HTTP/2.0", resp.Proto, resp.Header.Get("X-Backend-Proto"))
	}
	var ev Event
	var data []string
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		line := lines.Text()
		if line == "" { // a blank line dispatches the event (retry-only blocks carry no data)
			if data != nil {
				ev.Data, ev.Received = strings.Join(data, "\n"), time.Now()
				if !each(ev) {
					return nil
				}
			}
			ev, data = Event{ID: ev.ID}, nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.ID = value
		case "event":
			ev.Type = value
		case "data":
			data = append(data, value)
		}
	}
	return lines.Err()
}

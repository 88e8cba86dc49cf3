package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/muxpool/muxpool/mux"
)

// Client is one chat participant: a TCP connection carrying one mux session, a stream it
// opened to send lines, and a stream the server opened to push lines to it.
type Client struct {
	Name    string
	Welcome string // the server's first pushed line

	sess *mux.Session
	send *mux.Stream
	push *bufio.Reader
}

// Join connects to the server at addr as name and returns once the server has pushed its
// welcome, so every later chat line reaches this client.
func Join(ctx context.Context, addr, name string) (*Client, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	sess, err := mux.Client(conn, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &Client{Name: name, sess: sess}
	if err := c.handshake(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// handshake opens the send stream, names the client and waits for the push stream and
// its welcome line.
func (c *Client) handshake(ctx context.Context) error {
	var err error
	if c.send, err = c.sess.Open(ctx); err != nil {
		return err
	}
	if _, err := c.send.Write([]byte(c.Name + "\n")); err != nil {
		return err
	}
	push, err := c.sess.AcceptStream(ctx)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		push.SetReadDeadline(dl)
	}
	c.push = bufio.NewReader(push)
	if c.Welcome, err = c.Next(); err != nil {
		return err
	}
	push.SetReadDeadline(time.Time{})
	return nil
}

// Send sends one chat line; the server pushes it back to every client, this one included.
func (c *Client) Send(msg string) error {
	if strings.ContainsAny(msg, "\r\n") {
		return errors.New("chat: a message is one line")
	}
	_, err := c.send.Write([]byte(msg + "\n"))
	return err
}

// Next returns the next line the server pushed, without its newline. After the server or
// Close ended the session it returns an error.
func (c *Client) Next() (string, error) {
	line, err := c.push.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// Leave tells the server this client sends no more; pushed lines keep coming until the
// server closes the session.
func (c *Client) Leave() error { return c.send.CloseWrite() }

// Close ends the session and waits for its goroutines.
func (c *Client) Close() error {
	err := c.sess.Close()
	c.sess.Wait()
	return err
}

package pgpool

import (
	"context"
	"reflect"

	"github.com/jackc/pgx/v5"
)

// A tracer written for pgxpool (pgx's tracelog.TraceLog, OpenTelemetry wrappers) has methods
// that take pgxpool's types, so it does not implement AcquireTracer or ReleaseTracer. pgpool
// does not import pgxpool (a user of pgpool gets no puddle in the build), so it recognizes such
// a tracer by the shape of its methods, through reflection, and calls them with pgxpool's data
// types and a nil *pgxpool.Pool. The reflection costs allocations on each traced call; a tracer
// that implements pgpool's interfaces is called directly. A tracer that dereferences the pool
// argument panics; the panic is recovered and that call goes untraced.

// pgxpoolPath is the import path of pgxpool, whose types a pgxpool tracer's methods take.
const pgxpoolPath = "github.com/jackc/pgx/v5/pgxpool"

var (
	ctxType   = reflect.TypeFor[context.Context]()
	connType  = reflect.TypeFor[*pgx.Conn]()
	errorType = reflect.TypeFor[error]()
)

// isPgxpoolType reports whether t is pgxpool's type name (or a pointer to it when ptr).
func isPgxpoolType(t reflect.Type, name string, ptr bool) bool {
	if ptr {
		if t.Kind() != reflect.Pointer {
			return false
		}
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && t.PkgPath() == pgxpoolPath && t.Name() == name
}

// hasConnField reports whether struct type t has field Conn *pgx.Conn (and Err error when
// withErr).
func hasConnField(t reflect.Type, withErr bool) bool {
	f, ok := t.FieldByName("Conn")
	if !ok || f.Type != connType {
		return false
	}
	if withErr {
		f, ok = t.FieldByName("Err")
		return ok && f.Type == errorType
	}
	return true
}

// pgxpoolAcquire calls a pgxpool.AcquireTracer's methods.
type pgxpoolAcquire struct {
	start, end reflect.Value // bound methods
	pool       reflect.Value // a nil *pgxpool.Pool
	startData  reflect.Value // a zero pgxpool.TraceAcquireStartData
	endData    reflect.Type  // pgxpool.TraceAcquireEndData
}

// pgxpoolAcquireTracer returns an AcquireTracer calling tracer's pgxpool.AcquireTracer methods,
// or nil if tracer has no such methods.
func pgxpoolAcquireTracer(tracer any) AcquireTracer {
	if tracer == nil {
		return nil
	}
	v := reflect.ValueOf(tracer)
	start, end := v.MethodByName("TraceAcquireStart"), v.MethodByName("TraceAcquireEnd")
	if !start.IsValid() || !end.IsValid() {
		return nil
	}
	st, et := start.Type(), end.Type()
	if st.NumIn() != 3 || st.NumOut() != 1 || st.In(0) != ctxType || st.Out(0) != ctxType ||
		!isPgxpoolType(st.In(1), "Pool", true) || !isPgxpoolType(st.In(2), "TraceAcquireStartData", false) {
		return nil
	}
	if et.NumIn() != 3 || et.NumOut() != 0 || et.In(0) != ctxType || et.In(1) != st.In(1) ||
		!isPgxpoolType(et.In(2), "TraceAcquireEndData", false) || !hasConnField(et.In(2), true) {
		return nil
	}
	return &pgxpoolAcquire{
		start:     start,
		end:       end,
		pool:      reflect.Zero(st.In(1)),
		startData: reflect.Zero(st.In(2)),
		endData:   et.In(2),
	}
}

// skipAcquireEnd marks the ctx of an Acquire whose TraceAcquireStart panicked: its
// TraceAcquireEnd is not called, as it would look for what Start did not put in ctx.
type skipAcquireEnd struct{}

// TraceAcquireStart calls the tracer's TraceAcquireStart. A tracer that panics on the nil
// *pgxpool.Pool (some OpenTelemetry wrappers read pool.Config() without a nil check) does not
// take the Acquire down: the panic is recovered, and this Acquire goes untraced.
func (a *pgxpoolAcquire) TraceAcquireStart(ctx context.Context, _ *Pool, _ TraceAcquireStartData) (out context.Context) {
	defer func() {
		if recover() != nil {
			out = context.WithValue(ctx, skipAcquireEnd{}, true)
		}
	}()
	res := a.start.Call([]reflect.Value{reflect.ValueOf(&ctx).Elem(), a.pool, a.startData})
	return res[0].Interface().(context.Context)
}

// TraceAcquireEnd calls the tracer's TraceAcquireEnd with pgxpool's data type, unless its
// TraceAcquireStart panicked; a panic in it is recovered too.
func (a *pgxpoolAcquire) TraceAcquireEnd(ctx context.Context, _ *Pool, data TraceAcquireEndData) {
	if ctx.Value(skipAcquireEnd{}) != nil {
		return
	}
	defer func() { recover() }()
	d := reflect.New(a.endData).Elem()
	d.FieldByName("Conn").Set(reflect.ValueOf(data.Conn))
	if data.Err != nil {
		d.FieldByName("Err").Set(reflect.ValueOf(&data.Err).Elem())
	}
	a.end.Call([]reflect.Value{reflect.ValueOf(&ctx).Elem(), a.pool, d})
}

// pgxpoolRelease calls a pgxpool.ReleaseTracer's method.
type pgxpoolRelease struct {
	release reflect.Value // bound method
	pool    reflect.Value // a nil *pgxpool.Pool
	data    reflect.Type  // pgxpool.TraceReleaseData
}

// pgxpoolReleaseTracer returns a ReleaseTracer calling tracer's pgxpool.ReleaseTracer method,
// or nil if tracer has no such method.
func pgxpoolReleaseTracer(tracer any) ReleaseTracer {
	if tracer == nil {
		return nil
	}
	m := reflect.ValueOf(tracer).MethodByName("TraceRelease")
	if !m.IsValid() {
		return nil
	}
	t := m.Type()
	if t.NumIn() != 2 || t.NumOut() != 0 || !isPgxpoolType(t.In(0), "Pool", true) ||
		!isPgxpoolType(t.In(1), "TraceReleaseData", false) || !hasConnField(t.In(1), false) {
		return nil
	}
	return &pgxpoolRelease{release: m, pool: reflect.Zero(t.In(0)), data: t.In(1)}
}

// TraceRelease calls the tracer's TraceRelease with pgxpool's data type; a panic in it (on the
// nil *pgxpool.Pool) is recovered, so that the connection is still released.
func (r *pgxpoolRelease) TraceRelease(_ *Pool, data TraceReleaseData) {
	defer func() { recover() }()
	d := reflect.New(r.data).Elem()
	d.FieldByName("Conn").Set(reflect.ValueOf(data.Conn))
	r.release.Call([]reflect.Value{r.pool, d})
}

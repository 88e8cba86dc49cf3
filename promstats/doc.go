// Package promstats exports muxpool's statistics to Prometheus: one prometheus.Collector per
// kind of thing, each reading the package's own snapshot (pool.Pool.Stat, pgpool.Pool.PoolStat,
// mux.Session.Stats, demux.Proxy.Stats) at scrape time and sending constant metrics.
//
//   - Pool: one pool.Pool[T], any T (NewPool). Labels: pool.
//   - PgPool: one pgpool.Pool (NewPgPool), under the same metric names as Pool. Labels: pool.
//   - Mux: a set of mux sessions that changes as they come and go (NewMux, Add, Remove; ended
//     sessions leave by themselves). Labels: mux, and session on per-session series.
//   - Demux: one demux.Proxy (NewDemux). Labels: proxy, and target (an upstream address, ip:port)
//     on the series about one target, which leave with it.
//
// This is the only muxpool package that imports github.com/prometheus/client_golang: the core
// packages stay free of it.
//
// # Histograms
//
// Two distributions come from hooks in the core packages, which call an observer with each
// duration and cost nothing when none is set: pool.Config.AcquireObserver (the time of each
// successful Acquire) and mux.Config.RTTObserver (each round-trip time measured). A Histogram
// is such an observer: put it in the Config and give the same Histogram to NewPool or NewMux.
// Observing never allocates, so Acquire+Release stays at 0 allocations.
//
//	acquire := promstats.NewHistogram(nil) // DefaultBuckets: 10 µs to 10 s
//	p, err := pool.New(pool.Config[net.Conn]{..., AcquireObserver: acquire})
//	...
//	prometheus.MustRegister(promstats.NewPool(p, "upstream", acquire))
//
// # Metrics
//
// Counters end in _total, durations are in seconds and sizes in bytes. Every metric also
// carries its collector's name label (pool, mux or proxy); the labels column lists the others.
//
//	name                                         type       labels         from
//	muxpool_pool_resources                       gauge      state          Stat.Idle, Acquired, Constructing, Destroying
//	                                                                       (state idle, acquired, constructing, destroying)
//	muxpool_pool_max_resources                   gauge                     Stat.Max
//	muxpool_pool_effective_max_resources         gauge                     Stat.Cap
//	muxpool_pool_waiters                         gauge                     Stat.Waiting
//	muxpool_pool_acquire_total                   counter                   Stat.AcquireCount
//	muxpool_pool_acquire_empty_total             counter                   Stat.EmptyAcquireCount
//	muxpool_pool_acquire_canceled_total          counter                   Stat.CanceledAcquireCount
//	muxpool_pool_acquire_seconds_total           counter                   Stat.AcquireTime
//	muxpool_pool_acquire_wait_seconds_total      counter                   Stat.EmptyAcquireWaitTime
//	muxpool_pool_acquire_duration_seconds        histogram                 pool.Config.AcquireObserver
//	muxpool_pool_construct_total                 counter    result         Stat.ConstructCount (success),
//	                                                                       ConstructErrorCount (error)
//	muxpool_pool_destroy_total                   counter                   Stat.DestroyCount
//	muxpool_pool_expire_total                    counter    reason         Stat.LifetimeDestroyCount (max_lifetime),
//	                                                                       IdleDestroyCount (max_idle_time)
//	muxpool_pool_hijack_total                    counter                   Stat.HijackCount
//
//	muxpool_mux_sessions                         gauge                     sessions in the set
//	muxpool_mux_streams                          gauge      session        Stats.Streams
//	muxpool_mux_streams_opened_total             counter    session        Stats.StreamsOpened
//	muxpool_mux_streams_accepted_total           counter    session        Stats.StreamsAccepted
//	muxpool_mux_streams_refused_total            counter    session        Stats.StreamsRefused
//	muxpool_mux_frames_total                     counter    session,       Stats.FramesSent (sent),
//	                                                        direction      FramesReceived (received)
//	muxpool_mux_data_bytes_total                 counter    session,       Stats.BytesSent (sent),
//	                                                        direction      BytesReceived (received)
//	muxpool_mux_resets_received_total            counter    session        Stats.ResetsReceived
//	muxpool_mux_pongs_dropped_total              counter    session        Stats.PongsDropped
//	muxpool_mux_window_growths_total             counter    session        Stats.WindowGrowths
//	muxpool_mux_smoothed_rtt_seconds             gauge      session        Stats.RTT
//	muxpool_mux_memory_reserved_bytes            gauge      session        Stats.MemoryReserved
//	muxpool_mux_memory_limit_bytes               gauge      session        Stats.MemoryLimit
//	muxpool_mux_rtt_seconds                      histogram                 mux.Config.RTTObserver, whole set
//
//	muxpool_demux_connections                    gauge      target, state  Stats.Targets[i].Dialing (dialing),
//	                                                                       Conns-DrainingConns (active),
//	                                                                       DrainingConns (draining)
//	muxpool_demux_streams_in_use                 gauge      target         Stats.Targets[i].StreamsInUse
//	muxpool_demux_requests_sent_total            counter    target         Stats.Targets[i].Requests
//	muxpool_demux_dials_total                    counter    target         Stats.Targets[i].Dials
//	muxpool_demux_dial_errors_total              counter    target         Stats.Targets[i].DialErrors
//	muxpool_demux_target_ejected                 gauge      target         Stats.Targets[i].Ejected (1 or 0)
//	muxpool_demux_target_ejections_total         counter    target         Stats.Targets[i].Ejections
//	muxpool_demux_target_gone                    gauge      target         Stats.Targets[i].Gone (1 or 0)
//	muxpool_demux_requests_total                 counter                   Stats.Requests
//	muxpool_demux_queued_requests                gauge                     Stats.Queued
//	muxpool_demux_queue_waits_total              counter                   Stats.QueueWaits
//	muxpool_demux_queue_wait_seconds_total       counter                   Stats.QueueWaitTotal
//	muxpool_demux_queue_wait_max_seconds         gauge                     Stats.QueueWaitMax
//	muxpool_demux_queue_wait_duration_seconds    histogram                 demux.Config.QueueWaitObserver
//	muxpool_demux_queue_rejected_total           counter    reason         Stats.QueueTimeouts (timeout),
//	                                                                       QueueFull (full)
//	muxpool_demux_retries_total                  counter                   Stats.Retries
//	muxpool_demux_resets_received_total          counter                   Stats.Resets
//	muxpool_demux_goaways_received_total         counter                   Stats.GoAways
//
// The histograms are fed by hooks in the core packages, each given the same Histogram as
// its collector: pool.Config.AcquireObserver (and pgpool's), mux.Config.RTTObserver and
// demux.Config.QueueWaitObserver.
//
// Several collectors of one kind can share a registry when their names differ (pool, mux,
// proxy labels); the registry refuses a second collector with the same name.
package promstats

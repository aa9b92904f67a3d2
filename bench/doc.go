// Package bench measures schedulerd next to references measured in the same session on the
// same servers. It compares the dequeue with pgbench -N and River, the dequeue on a growing
// jobs table with itself, and pod creation with a raw client-go loop. It also times the
// GPU-hour report, submit-to-pod latency and the daemon's memory.
//
// Every measurement drives the store, scheduler, dispatcher and daemon through their
// exported API, on databases and namespaces of its own. Only the bulk loads of finished
// jobs and runs bypass the jobs triggers, to insert millions of rows in minutes.
// bench/cmd/schedulerd-bench runs the measurements, and scripts/bench.sh starts the
// servers for that command.
package bench

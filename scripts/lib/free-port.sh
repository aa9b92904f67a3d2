# free_port: prints a loopback TCP port nothing listens on now, from 20000 to 49999. The
# caller's server may still lose it to another process before it binds, so callers that can
# retry on "address in use" should.
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "free_port: no free port found after 50 tries" >&2
  return 1
}

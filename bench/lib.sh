# bench/lib.sh — what the bench scripts that run one aigw against aigw-mock share, sourced after
# they `cd` to the repository: a scratch directory ($work) and the processes to stop on exit
# ($pids, the EXIT trap), a free loopback port (free_port), and aigw-mock started on one
# (start_mock: $mock_port). Everything listens on 127.0.0.1 only.
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
start_mock() {
    mock_port=$(free_port)
    build/aigw-mock --listen "127.0.0.1:$mock_port" --record 0 >/dev/null &
    pids+=($!)
}

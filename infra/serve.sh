# Sourced by the scripts that drive `labelport serve`: builds it, starts it on a free
# port with a fresh data folder (seeded with the demo project), and stops and removes
# both on exit. Sets $bin, $data, $api and $PYTHON.
PYTHON=${LABELPORT_PYTHON:-python3}
cargo build --quiet --locked --bin labelport
bin=${CARGO_TARGET_DIR:-target}/debug/labelport
data=$(mktemp -d)
port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" serve --addr "127.0.0.1:$port" --data "$data" > "$data/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$data"' EXIT
api="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -s "$api/" > /dev/null && break; sleep 0.2; done

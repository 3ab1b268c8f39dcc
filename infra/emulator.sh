# Sourced by the scripts: starts two moto servers on free loopback ports (one for S3, SQS
# and STS, one for SES alone: moto's data endpoint fails once a server has seen multipart
# uploads), points the AWS SDK at them, and stops them on exit.
free_port() { "$LABELPORT_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
EMULATOR_LOGS=${EMULATOR_LOGS:-$(mktemp -d)}
MOTO_PORT=$(free_port)
MOTO_SES_PORT=$(free_port)
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" > "$EMULATOR_LOGS/moto.log" 2>&1 &
MOTO_PID=$!
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_SES_PORT" > "$EMULATOR_LOGS/moto-ses.log" 2>&1 &
MOTO_SES_PID=$!
stop_emulator() { kill "$MOTO_PID" "$MOTO_SES_PID" 2>/dev/null || true; }
trap stop_emulator EXIT
for port in "$MOTO_PORT" "$MOTO_SES_PORT"; do
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/moto-api/" > /dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/moto-api/" > /dev/null || { echo "moto did not start on $port:"; cat "$EMULATOR_LOGS"/moto*.log; exit 1; }
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ENDPOINT_URL_SES="http://127.0.0.1:$MOTO_SES_PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export S3_FORCE_PATH_STYLE=true
echo "== AWS emulator: $AWS_ENDPOINT_URL (SES: $AWS_ENDPOINT_URL_SES), logs in $EMULATOR_LOGS"

#!/usr/bin/env bash
# `make dev`: the whole system on this machine, in the foreground. Ctrl-C stops everything it
# started; if any part dies, it says which and stops the rest. Emulator on MOTO_PORT (5050; 0
# picks a free one), functions on LAMBDA_PORT (9000).
set -euo pipefail
cd "$(dirname "$0")/.."
infra/bootstrap.sh
. infra/lib.sh
export PATH="$PWD/.venv/bin:$PATH"
moto_port=${MOTO_PORT:-5050}
lambda_port=${LAMBDA_PORT:-9000}
dir=.local/dev
mkdir -p "$dir"
py=.venv/bin/python

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if port_taken "$lambda_port"; then echo "port $lambda_port is in use (another make dev?); set LAMBDA_PORT"; exit 1; fi

pids=() names=()
cleanup() {
  trap - EXIT INT TERM
  echo; echo "stopping local stack..."
  for pid in "${pids[@]}"; do stop_group "$pid" 5; done
  rm -f "$dir/stack.env"
}
trap cleanup EXIT INT TERM
# Each service in its own process group, so stopping it stops its children too.
start() { local name=$1; shift; setsid "$@" > "$dir/$name.log" 2>&1 & pids+=($!); names+=("$name"); }

start_emulator "$dir" "$moto_port"
pids+=("$EMULATOR_PID"); names+=(moto)
endpoint="http://127.0.0.1:$EMULATOR_PORT"
$py infra/stack.py wait --endpoint "$endpoint"
$py infra/stack.py provision --endpoint "$endpoint" --stage local --env-out "$dir/stack.env" --sources-out "$dir/sources.json"
set -a; . "$dir/stack.env"; set +a

# Partners the functions call, stood in for locally: their URLs reach the functions as
# PARTNER_URL_<NAME> through stack.env.
# sandbox NAME PORT COMMAND...: starts COMMAND on PORT (0: any free one) and exports
# PARTNER_URL_<NAME> (also into stack.env, for the functions).
sandbox() {
  local name=$1 port=$2 upper
  shift 2
  upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
  rm -f "$dir/$name.port"
  start "$name-sandbox" "$@" --port "$port" --port-file "$dir/$name.port"
  for _ in $(seq 1 100); do [ -s "$dir/$name.port" ] && break; sleep 0.1; done
  [ -s "$dir/$name.port" ] || { echo "the $name sandbox did not start; see $dir/$name-sandbox.log"; exit 1; }
  echo "PARTNER_URL_$upper=http://127.0.0.1:$(cat "$dir/$name.port")" >> "$dir/stack.env"
  export "PARTNER_URL_$upper=http://127.0.0.1:$(cat "$dir/$name.port")"
}
# WhatsApp sends' statuses come back to the local webhook, signed with the demo App Secret.
sandbox graph "${GRAPH_PORT:-0}" "$py" infra/sandboxes/graph.py \
  --webhook "http://127.0.0.1:$lambda_port/lambda-url/whatsapp-inbound/whatsapp"
sandbox insurup "${INSURUP_PORT:-0}" "$py" infra/sandboxes/insurup.py
sandbox karel "${KAREL_PORT:-0}" "$py" infra/sandboxes/karel.py
# Logo's stand-in is Rust: it serves make bench-sync's 100k cari too (infra/logo-sandbox).
cargo build -q -p logo-sandbox
sandbox logo "${LOGO_PORT:-0}" target/debug/logo-sandbox --customers "${LOGO_CUSTOMERS:-200}" --items 40
# Euromsg Express's stand-in is Rust too: it serves make bench-poll's 100k members.
cargo build -q -p express-sandbox
sandbox express "${EXPRESS_PORT:-0}" target/debug/express-sandbox --members "${EXPRESS_MEMBERS:-200}" --report-rows 100
graph_url=$PARTNER_URL_GRAPH
insurup_url=$PARTNER_URL_INSURUP
karel_url=$PARTNER_URL_KAREL
logo_url=$PARTNER_URL_LOGO
express_url=$PARTNER_URL_EXPRESS

echo "seeding the demo tenant..."
cargo run -q -p onecrm-admin -- seed-demo

echo "starting cargo lambda watch (first build takes a few minutes; log: $dir/functions.log)..."
# As many instances per function as its busiest event source may run at once (Lambda's
# MaximumConcurrency; cargo lambda watch defaults to one), unless LAMBDA_CONCURRENCY says less.
concurrency=${LAMBDA_CONCURRENCY:-$($py -c 'import json,sys; print(max([s.get("maximum_concurrency", 1) for s in json.load(open(sys.argv[1]))] + [2]))' "$dir/sources.json")}
start functions cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$lambda_port" --env-file "$dir/stack.env" --concurrency "$concurrency"
for _ in $(seq 1 600); do
  port_taken "$lambda_port" && break
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "cargo lambda watch stopped; see $dir/functions.log"; tail -n 20 "$dir/functions.log"; exit 1; }
  sleep 0.5
done
start poller "$py" infra/poller.py run --sources "$dir/sources.json" --invoke-url "http://127.0.0.1:$lambda_port"

cat <<INFO

ONE CRM integrations: local stack is up (make dev). Ctrl-C stops it.

  Emulator (DynamoDB, SQS, Secrets Manager)   $endpoint
  WhatsApp webhook (GET handshake, POST)      http://127.0.0.1:$lambda_port/lambda-url/whatsapp-inbound/whatsapp
  Lead Ads webhook (GET handshake, POST)      http://127.0.0.1:$lambda_port/lambda-url/meta-lead/meta-lead
  Web form (OPTIONS, POST; key wf_demo_key)   http://127.0.0.1:$lambda_port/lambda-url/web-form/web-form
  PBX call events (POST; token pbx_demo_token) http://127.0.0.1:$lambda_port/lambda-url/pbx-call/pbx  (or .../pbx-call/<token>)
  InsurUp webhook (POST; account demo-insurup) http://127.0.0.1:$lambda_port/lambda-url/insurup-policy-webhook/demo-insurup
  Graph API sandbox (Lead Ads, WhatsApp sends) $graph_url  (POST /sandbox/leads, /sandbox/errors; GET /sandbox/sends)
  InsurUp sandbox (agent user, REST, send)    $insurup_url  (POST /sandbox/send, /sandbox/expire)
  Karel CRM sandbox (PpOpportunities)         $karel_url  (GET /sandbox/opportunities, POST /sandbox/lock, /sandbox/slow)
  Karel opportunity changes queue (the CRM's) $KAREL_QUEUE_URL
  Logo sandbox (REST, generated)              $logo_url  (${LOGO_CUSTOMERS:-200} cari; GET /sandbox/stats, POST /sandbox/touch, /sandbox/expire)
  Logo sync jobs (nightly 02:00 Istanbul)     $LOGO_QUEUE_URL  (make logo-sync, make logo-report)
  Euromsg Express sandbox (gateway, generated) $express_url  (${EXPRESS_MEMBERS:-200} members; GET /sandbox/stats, POST /sandbox/member, /sandbox/expire, /sandbox/throttle, /sandbox/package)
  Express poll and push jobs (nightly 02:30)  $EXPRESS_QUEUE_URL  (make express-poll, make express-report)
  Operator API (GET; key demo-operator-key)   http://127.0.0.1:$lambda_port/lambda-url/crm-api/v1/logs?integration=whatsapp
  Log screen (key demo-operator-key)          http://127.0.0.1:$lambda_port/lambda-url/crm-api/ui
  Lambda Invoke API (any function)            http://127.0.0.1:$lambda_port/2015-03-31/functions/<name>/invocations
  WhatsApp events queue                       $WHATSAPP_QUEUE_URL
  WhatsApp sends queue (crm-api's, the CRM's) $QUEUE_URL_WhatsAppSendQueue
  Dead-letter queues                          $QUEUE_URL_WhatsAppEventsDeadLetterQueue
                                              $QUEUE_URL_MetaLeadEventsDeadLetterQueue
                                              $QUEUE_URL_WebFormEventsDeadLetterQueue
                                              $QUEUE_URL_InsurUpEventsDeadLetterQueue
                                              $QUEUE_URL_KarelOpportunitiesDeadLetterQueue
                                              $QUEUE_URL_LogoJobsDeadLetterQueue
                                              $QUEUE_URL_ExpressJobsDeadLetterQueue
  Tables                                      $CRM_TABLE, $LOG_TABLE
  Environment for your own tools              $dir/stack.env
  Logs                                        $dir/{moto,functions,poller,*-sandbox}.log

Demo tenant "demo" (App Secret demo-app-secret, verify token demo-verify-token); known customer
Mehmet Demir +905321112233. Try:

  curl "http://127.0.0.1:$lambda_port/lambda-url/whatsapp-inbound/whatsapp?hub.mode=subscribe&hub.verify_token=demo-verify-token&hub.challenge=42"
  curl -s http://127.0.0.1:$lambda_port/lambda-url/whatsapp-inbound/whatsapp -H 'content-type: application/json' \\
       -H "x-hub-signature-256: \$(.venv/bin/python infra/sign.py events/whatsapp-inbound/text-message.body.json)" \\
       --data-binary @events/whatsapp-inbound/text-message.body.json

  curl -s http://127.0.0.1:$lambda_port/lambda-url/pbx-call/pbx -H 'x-pbx-token: pbx_demo_token' \\
       -d '{"callUniqueId":"A000001","extension":"911","agentId":"911","callerId":"05321112233","keypress":"3"}'

  .venv/bin/python infra/sandboxes/insurup.py send --secret demo-insurup-secret \\
       --url http://127.0.0.1:$lambda_port/lambda-url/insurup-policy-webhook/demo-insurup \\
       events/insurup-policy-webhook/policy-created.body.json

  curl -s http://127.0.0.1:$lambda_port/lambda-url/crm-api/v1/whatsapp/messages -H 'authorization: Bearer demo-operator-key' \
       -d '{"card_id":"demo-customer-mehmet","message":{"type":"template","name":"randevu_hatirlatma","language":"tr","parameters":["Mehmet Bey"]}}'

then, in another terminal:

  make card PHONE='0533 123 45 67'     the new lead: card, note, task, timeline
  make call-queue                      the PBX call queue, newest first
  make logo-sync && make logo-report  a Logo sync of the demo tenant now, then its reconciliation report
  make express-poll && make express-report  an Express poll of the demo tenant now, then its report
  make logs                            the integration log (make logs TRACE=<trace_id> for one event's path)
  curl -s -H 'authorization: Bearer demo-operator-key' "http://127.0.0.1:$lambda_port/lambda-url/crm-api/v1/logs?integration=express"

INFO
tail -n +1 -f "$dir/poller.log" &
tail_pid=$!
# Watch every part: one that dies is named, with the end of its log, and the stack stops.
while sleep 1; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      kill "$tail_pid" 2>/dev/null || true
      echo; echo "make dev: ${names[$i]} stopped unexpectedly; last lines of $dir/${names[$i]}.log:"
      tail -n 15 "$dir/${names[$i]}.log" 2>/dev/null || true
      exit 1
    fi
  done
done

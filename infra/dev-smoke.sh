#!/usr/bin/env bash
# Proves `make dev` works as the README says: starts it on free ports, sends the signed sample
# WhatsApp message and Lead Ads delivery to the printed webhook URLs, waits until the workers
# (fed by the local SQS poller; Lead Ads reading Graph's sandbox) have created the leads, then
# stops the stack and checks nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
infra/bootstrap.sh
py=.venv/bin/python
export MOTO_PORT=${MOTO_PORT:-0}
export LAMBDA_PORT=${LAMBDA_PORT:-$($py infra/stack.py free-port)}
log=.local/dev-smoke.log
mkdir -p .local
setsid infra/dev.sh > "$log" 2>&1 &
dev=$!
stop() { kill -TERM -- "-$dev" 2>/dev/null || true; wait "$dev" 2>/dev/null || true; }
moto_pid() { pgrep -f "infra/emulator.py serve --port $MOTO_PORT --port-file .local/dev/moto.port"; }
trap stop EXIT

url="http://127.0.0.1:$LAMBDA_PORT/lambda-url/whatsapp-inbound/whatsapp"
for _ in $(seq 1 600); do
  grep -q "local stack is up" "$log" && break
  kill -0 "$dev" 2>/dev/null || { cat "$log"; echo "make dev exited early"; exit 1; }
  sleep 0.5
done
grep -q "local stack is up" "$log" || { cat "$log"; echo "make dev did not come up"; exit 1; }

challenge=$(curl -s --max-time 120 "$url?hub.mode=subscribe&hub.verify_token=demo-verify-token&hub.challenge=42")
[ "$challenge" = 42 ] || { echo "handshake answered: $challenge"; exit 1; }
body=events/whatsapp-inbound/text-message.body.json
reply=$(curl -s --max-time 60 "$url" -H 'content-type: application/json' \
  -H "x-hub-signature-256: $($py infra/sign.py $body)" --data-binary @$body)
echo "webhook: $reply"
echo "$reply" | grep -q '"status":"queued"' || exit 1

set -a; . .local/dev/stack.env; set +a
for _ in $(seq 1 120); do
  found=$($py - <<'PY'
import boto3, os
items = boto3.client("dynamodb").query(TableName=os.environ["CRM_TABLE"],
    KeyConditionExpression="pk = :pk AND begins_with(sk, :card)",
    ExpressionAttributeValues={":pk": {"S": "T#demo#ID#PHONE#+905331234567"}, ":card": {"S": "CARD#"}})["Items"]
print(items[0]["display_name"]["S"] if items else "")
PY
)
  [ -n "$found" ] && break
  sleep 0.5
done
[ -n "$found" ] || { tail -20 .local/dev/poller.log .local/dev/functions.log; echo "no lead after the webhook"; exit 1; }
echo "lead created through make dev: $found"

# Lead Ads: the signed organic-lead sample to the printed URL; the worker reads the lead from
# the Graph sandbox make dev started (its phone is +90 532 555 00 92).
lead_url="http://127.0.0.1:$LAMBDA_PORT/lambda-url/meta-lead/meta-lead"
body=events/meta-lead/organic-lead.body.json
reply=$(curl -s --max-time 300 "$lead_url" -H 'content-type: application/json' \
  -H "x-hub-signature-256: $($py infra/sign.py $body)" --data-binary @$body)
echo "lead ads webhook: $reply"
echo "$reply" | grep -q '"status":"queued"' || exit 1
for _ in $(seq 1 600); do
  source=$($py - <<'PY'
import boto3, os
ddb = boto3.client("dynamodb")
items = ddb.query(TableName=os.environ["CRM_TABLE"], KeyConditionExpression="pk = :pk AND begins_with(sk, :card)",
    ExpressionAttributeValues={":pk": {"S": "T#demo#ID#PHONE#+905325550092"}, ":card": {"S": "CARD#"}})["Items"]
if items:
    card = ddb.get_item(TableName=os.environ["CRM_TABLE"], Key={"pk": {"S": f"T#demo#CARD#{items[0]['card_id']['S']}"}, "sk": {"S": "PROFILE"}})
    print(card["Item"]["lead"]["M"]["source"]["S"])
PY
)
  [ -n "$source" ] && break
  sleep 0.5
done
[ "$source" = meta_lead_ads ] || { tail -20 .local/dev/poller.log .local/dev/functions.log .local/dev/graph-sandbox.log; echo "no Lead Ads lead after the webhook"; exit 1; }
echo "Lead Ads lead created through make dev (Graph sandbox): source $source"

# Web form: the demo key from the demo site's origin, as example.html posts it.
form_url="http://127.0.0.1:$LAMBDA_PORT/lambda-url/web-form/web-form"
reply=$(curl -s --max-time 300 "$form_url" -H 'content-type: application/x-www-form-urlencoded' \
  -H 'x-api-key: wf_demo_key' -H 'origin: http://localhost:8080' \
  --data 'ad_soyad=Deneme+Form&telefon=0532+555+00+77&kvkk=on&utm_source=smoke')
echo "web form: $reply"
echo "$reply" | grep -q '"status":"queued"' || exit 1
for _ in $(seq 1 600); do
  source=$($py - <<'PY'
import boto3, os
items = boto3.client("dynamodb").query(TableName=os.environ["CRM_TABLE"], KeyConditionExpression="pk = :pk AND begins_with(sk, :card)",
    ExpressionAttributeValues={":pk": {"S": "T#demo#ID#PHONE#+905325550077"}, ":card": {"S": "CARD#"}})["Items"]
print("web_form" if items else "")
PY
)
  [ -n "$source" ] && break
  sleep 0.5
done
[ "$source" = web_form ] || { tail -20 .local/dev/poller.log .local/dev/functions.log; echo "no web-form lead after the post"; exit 1; }
echo "web-form lead created through make dev"

# PBX: a keypress-3 call from the demo customer, answered at once with a numbered ticket.
reply=$(curl -s --max-time 300 "http://127.0.0.1:$LAMBDA_PORT/lambda-url/pbx-call/pbx" -H 'x-pbx-token: pbx_demo_token' \
  -d '{"callUniqueId":"SMOKE-1","extension":"911","agentId":"911","callerId":"0532 111 22 33","keypress":"3"}')
echo "pbx call: $reply"
echo "$reply" | grep -q '"card_id":"demo-customer-mehmet"' || { tail -20 .local/dev/functions.log; echo "the PBX call did not match the demo customer"; exit 1; }
echo "$reply" | grep -q '"readable_number":"T-0' || { echo "the PBX call opened no ticket"; exit 1; }
echo "PBX call answered through make dev"

# InsurUp: a signed policy.created for a customer nobody has; the worker asks the sandbox (as the
# agent user) who she is and opens her card.
.venv/bin/python infra/sandboxes/insurup.py send --secret demo-insurup-secret \
  --url "http://127.0.0.1:$LAMBDA_PORT/lambda-url/insurup-policy-webhook/demo-insurup" \
  events/insurup-policy-webhook/policy-created.body.json || { tail -20 .local/dev/functions.log; exit 1; }
for _ in $(seq 1 600); do
  found=$($py - <<'PY'
import boto3, os
items = boto3.client("dynamodb").query(TableName=os.environ["CRM_TABLE"], KeyConditionExpression="pk = :pk",
    ExpressionAttributeValues={":pk": {"S": "T#demo#POLICY#pol-1001"}})["Items"]
print("policy" if items else "")
PY
)
  [ -n "$found" ] && break
  sleep 0.5
done
[ "$found" = policy ] || { tail -20 .local/dev/poller.log .local/dev/functions.log .local/dev/insurup-sandbox.log; echo "no InsurUp policy after the webhook"; exit 1; }
echo "InsurUp policy landed through make dev (InsurUp sandbox)"

# Karel: the CRM's opportunity change on the queue; karel-push creates it in the Karel sandbox.
$py - <<'PY'
import boto3, os, pathlib
body = pathlib.Path("events/karel-push/crm-stage-change.message.json").read_text(encoding="utf-8")
boto3.client("sqs").send_message(QueueUrl=os.environ["KAREL_QUEUE_URL"], MessageBody=body)
PY
for _ in $(seq 1 600); do
  found=$(curl -s "$PARTNER_URL_KAREL/sandbox/opportunities" | grep -o 'onecrm:crm-opp-501' | head -1 || true)
  [ -n "$found" ] && break
  sleep 0.5
done
[ -n "$found" ] || { tail -20 .local/dev/poller.log .local/dev/functions.log .local/dev/karel-sandbox.log; echo "no Karel opportunity after the change"; exit 1; }
echo "Karel opportunity created through make dev (Karel sandbox)"
# Logo: the nightly schedule fired now; its fan-out queues the demo tenant's job, logo-sync
# runs it against the Logo sandbox and leaves a reconciliation report.
$py infra/poller.py fire --sources .local/dev/sources.json --invoke-url "http://127.0.0.1:$LAMBDA_PORT" --function LogoSyncFunction
for _ in $(seq 1 600); do
  found=$(cargo run -q -p onecrm-admin -- logo-report --tenant demo 2>/dev/null | grep -o 'reconciliation: [A-Z]*' | head -1 || true)
  [ -n "$found" ] && break
  sleep 1
done
[ -n "$found" ] || { tail -20 .local/dev/poller.log .local/dev/functions.log .local/dev/logo-sandbox.log; echo "no Logo report after the schedule fired"; exit 1; }
echo "Logo sync ran through make dev (Logo sandbox): $found"
# Express: the nightly schedule fired now; express-member-poll polls the demo tenant's account
# in the Express sandbox and leaves a report.
$py infra/poller.py fire --sources .local/dev/sources.json --invoke-url "http://127.0.0.1:$LAMBDA_PORT" --function ExpressMemberPollFunction
for _ in $(seq 1 600); do
  found=$(cargo run -q -p onecrm-admin -- express-report --tenant demo 2>/dev/null | grep -o 'members read [0-9]*' | head -1 || true)
  [ -n "$found" ] && break
  sleep 1
done
[ -n "$found" ] || { tail -20 .local/dev/poller.log .local/dev/functions.log .local/dev/express-sandbox.log; echo "no Express report after the schedule fired"; exit 1; }
echo "Express poll ran through make dev (Express sandbox): $found"
# The operator API: the demo key reads the Express poll's record from the integration log.
for _ in $(seq 1 120); do
  found=$(curl -s -H 'authorization: Bearer demo-operator-key' "http://127.0.0.1:$LAMBDA_PORT/lambda-url/crm-api/v1/logs?integration=express&limit=200" | grep -o '"operation":"express.poll.run"' | head -1 || true)
  [ -n "$found" ] && break
  sleep 1
done
[ -n "$found" ] || { tail -20 .local/dev/functions.log; echo "the operator API did not list the Express poll"; exit 1; }
echo "operator API listed the integration log through make dev"
# Outbound WhatsApp: a template to the demo customer through crm-api, sent once by the worker
# to the Graph sandbox, whose signed statuses come back through the webhook up to `read`.
api="http://127.0.0.1:$LAMBDA_PORT/lambda-url/crm-api/v1"
reply=$(curl -s --max-time 60 "$api/whatsapp/messages" -H 'authorization: Bearer demo-operator-key' \
  -d '{"send_id":"smoke-1","card_id":"demo-customer-mehmet","message":{"type":"template","name":"randevu_hatirlatma","language":"tr","parameters":["Mehmet Bey"]}}')
echo "$reply" | grep -q '"state":"queued"' || { echo "send answered: $reply"; exit 1; }
for _ in $(seq 1 120); do
  found=$(curl -s -H 'authorization: Bearer demo-operator-key' "$api/whatsapp/messages/smoke-1" | grep -o '"status":"read"' | head -1 || true)
  [ -n "$found" ] && break
  sleep 1
done
[ -n "$found" ] || { curl -s -H 'authorization: Bearer demo-operator-key' "$api/whatsapp/messages/smoke-1"; tail -20 .local/dev/functions.log .local/dev/graph-sandbox.log; echo "the send did not reach read"; exit 1; }
echo "WhatsApp template sent through make dev (Graph sandbox) and read, by its signed statuses"
# Read whole before grep: grep -q stops at the first match, and under pipefail curl's broken
# pipe would fail the check.
screen=$(curl -s "http://127.0.0.1:$LAMBDA_PORT/lambda-url/crm-api/ui")
grep -q 'Entegrasyon kay' <<<"$screen" || { echo "the log screen was not served"; exit 1; }
# The log screen in headless Chromium: filter, a record's detail, a lead's card and a template
# sent from it; screenshots in .local/screen, the page's timings on this warm stack.
chromium=$(infra/require-browser.sh)
$py infra/browser_check.py --url "http://127.0.0.1:$LAMBDA_PORT/lambda-url/crm-api/ui" --key demo-operator-key \
  --chromium "$chromium" --out .local/screen
echo "log screen served at http://127.0.0.1:$LAMBDA_PORT/lambda-url/crm-api/ui"
stop
trap - EXIT
left() { moto_pid >/dev/null || pgrep -f "invoke-port $LAMBDA_PORT" >/dev/null || pgrep -f "infra/sandboxes/graph.py --webhook" >/dev/null || pgrep -f "infra/sandboxes/insurup.py --port" >/dev/null || pgrep -f "infra/sandboxes/karel.py --port" >/dev/null || pgrep -f "logo-sandbox --customers" >/dev/null || pgrep -f "express-sandbox --members" >/dev/null; }
for _ in $(seq 1 20); do left || break; sleep 0.5; done
if left; then
  pgrep -fa "emulator.py|invoke-port $LAMBDA_PORT|infra/sandboxes/graph.py" || true
  echo "make dev left processes running"; exit 1
fi
echo "make dev smoke test: ok"

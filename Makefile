# onecrm-integrations: every command installs what it needs (infra/bootstrap.sh).
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(HOME)/.cargo/bin:$(PATH)

FUNCTIONS := whatsapp-inbound whatsapp-worker meta-lead meta-lead-worker web-form web-form-worker pbx-call insurup-policy-webhook insurup-worker karel-push logo-sync express-member-poll crm-api
# arm64 is what template.yaml deploys; it is built where its Rust target is installed.
ARM64 := $(shell rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu && echo yes)

.PHONY: help tools dev test lint unit build bench bench-burst bench-pbx bench-sync bench-emulator cost events tenant card logs report call-queue logo-sync logo-report express-poll express-report bench-poll bench-logs clean

help:
	@echo "make dev     local stack: emulator, tables, queues, secrets, demo tenant, functions, SQS poller"
	@echo "make test    fmt + clippy + cfn-lint + every test against a private emulator"
	@echo "make build   release bootstrap zips in target/lambda/<function>/"
	@echo "make bench   cold start and RSS of every function (release build)"
	@echo "make bench-burst   1,000 WhatsApp events through the running make dev stack"
	@echo "make bench-pbx   1,000 PBX call events through the running make dev stack (p50/p95)"
	@echo "make cost    write/read units, requests and USD per million events of each kind"
	@echo "make bench-emulator   the emulator's transaction cost as tables fill"
	@echo "make tenant ARGS='--id acme ...'   add a tenant (see README)"
	@echo "make card PHONE='0533 123 45 67'   the card of a phone: details, notes, tasks, timeline"
	@echo "make logs [TRACE=id] [CODE=131026]   integration-log records, newest first"
	@echo "make report [FROM=2026-11-01] [TO=2026-12-01]   leads and customers per source, UTM tag and Meta campaign"
	@echo "make call-queue [USER_ID=u] [EXT=911]   the PBX call queue, newest first"
	@echo "make logo-sync [FULL=1]   queue a Logo sync of the demo tenant on the running make dev stack"
	@echo "make logo-report   the demo tenant's last Logo reconciliation report"
	@echo "make bench-sync [SIZES=10000,100000]   the Logo sync against the sandbox and a private emulator"
	@echo "make express-poll   queue an Euromsg Express poll of the demo tenant on the running make dev stack"
	@echo "make express-report   the demo tenant's last Express poll report"
	@echo "make bench-poll [SIZES=10000,100000]   the Express poll against the sandbox and a private emulator"
	@echo "make bench-logs [RECORDS=100000]   the log list route's p50/p95 over that many log records"

tools:
	@infra/bootstrap.sh

dev: tools
	@infra/dev.sh

lint: tools
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	cfn-lint template.yaml
	@infra/check-stack.sh

# Domain unit tests only: no emulator, seconds.
unit:
	cargo test -p onecrm-domain

test: lint
	infra/test.sh

build: tools
	cargo lambda build --release --x86-64 --output-format zip --lambda-dir target/lambda $(addprefix --bin ,$(FUNCTIONS))
	@if [ "$(ARM64)" = yes ]; then cargo lambda build --release --arm64 --output-format zip --lambda-dir target/lambda-arm64 $(addprefix --bin ,$(FUNCTIONS)); \
	 else echo "arm64: target not installed here; 'sam build' builds it on a machine that has it"; fi
	@infra/check-glibc.sh $(FUNCTIONS)

# Cold start and RSS at the first poll, then RSS after 100 warm invocations on a private
# emulator with the demo tenant (inbound first: the worker replays the envelopes it queued).
bench: tools
	cargo lambda build --release --x86-64 --lambda-dir target/lambda $(addprefix --bin ,$(FUNCTIONS))
	infra/with-emulator.sh bash -c 'cargo run -q -p onecrm-admin -- seed-demo >/dev/null && \
	  .venv/bin/python infra/bench.py --bins $(subst $(space),$(comma),$(FUNCTIONS)) --runs 20 --warm 100 --env-file .local/test/stack.env' 
	cargo bench -q -p onecrm-domain --features testing --bench webhook

# A burst through the running `make dev` stack (start it first): throughput, answer times,
# lost/doubled counts, emulator memory and the emulator's raw transaction rate.
bench-burst: tools
	.venv/bin/python infra/bench_burst.py --events $(or $(EVENTS),1000) --senders $(or $(SENDERS),200)

# 1,000 PBX call events through the running `make dev` stack: p50/p95 of the whole request.
bench-pbx: tools
	.venv/bin/python infra/bench_pbx.py --calls $(or $(CALLS),1000) --clients $(or $(CLIENTS),4)

# The emulator's cost of one 6-item transaction at 0, 10k and 100k items (patched vs plain moto).
bench-emulator: tools
	.venv/bin/python infra/bench_emulator.py

# What one event costs on AWS (write/read units, requests, USD per million), on a private emulator.
cost: tools
	cargo lambda build --release --x86-64 --lambda-dir target/lambda $(addprefix --bin ,$(FUNCTIONS))
	infra/with-emulator.sh bash -c 'cargo run -q -p onecrm-admin -- seed-demo >/dev/null && \
	  .venv/bin/python infra/cost.py --env-file .local/test/stack.env $(COST_ARGS)'

events: tools
	.venv/bin/python infra/make_events.py

# Against the running `make dev` stack when there is one, else against the AWS account in the
# environment (CRM_TABLE, LOG_TABLE, TENANT_SECRET_PREFIX set to the deployed stack's values).
tenant: tools
	@set -a; [ -f .local/dev/stack.env ] && . .local/dev/stack.env; set +a; \
	 cargo run -q -p onecrm-admin -- add-tenant $(ARGS)

# What the integrations stored, on the running `make dev` stack (TENANT defaults to demo).
TENANT ?= demo
card: tools
	@infra/require-dev.sh
	@set -a; . .local/dev/stack.env; set +a; \
	 cargo run -q -p onecrm-admin -- card --tenant $(TENANT) --phone "$(PHONE)"

logs: tools
	@infra/require-dev.sh
	@set -a; . .local/dev/stack.env; set +a; \
	 cargo run -q -p onecrm-admin -- logs --tenant $(TENANT) $(if $(TRACE),--trace $(TRACE)) $(if $(CODE),--error-code $(CODE))

# Attribution on the running `make dev` stack: leads created in [FROM, TO) (Istanbul dates;
# default: this month) per source, utm_source, utm_medium, utm_campaign and Meta campaign.
report: tools
	@infra/require-dev.sh
	@set -a; . .local/dev/stack.env; set +a; \
	 cargo run -q -p onecrm-admin -- report --tenant $(TENANT) $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO))

# The call queue on the running `make dev` stack, newest first (USER=<crm user> or EXT=<extension>
# for one agent's).
call-queue: tools
	@infra/require-dev.sh
	@set -a; . .local/dev/stack.env; set +a; \
	 cargo run -q -p onecrm-admin -- call-queue --tenant $(TENANT) $(if $(USER_ID),--user $(USER_ID)) $(if $(EXT),--extension $(EXT))

# A Logo sync of TENANT on the running `make dev` stack: queued like the nightly one.
logo-sync: tools
	@infra/require-dev.sh
	@set -a; . .local/dev/stack.env; set +a; \
	 cargo run -q -p onecrm-admin -- logo-sync --tenant $(TENANT) $(if $(FULL),--full)

logo-report: tools
	@infra/require-dev.sh
	@set -a; . .local/dev/stack.env; set +a; \
	 cargo run -q -p onecrm-admin -- logo-report --tenant $(TENANT) --last $(or $(LAST),1)

# The Logo sync (release build, in one process) against the Rust Logo sandbox and a private
# emulator, for each size of cari (3 invoices each): records per second, peak RSS, and the
# emulator's raw BatchWriteItem rate for the same items in the same run.
bench-sync: tools
	cargo build --release -q -p onecrm-admin -p logo-sandbox
	.venv/bin/python infra/bench_sync.py --sizes $(or $(SIZES),10000,100000)

# An Express poll of TENANT on the running `make dev` stack: queued like the nightly one.
express-poll: tools
	@infra/require-dev.sh
	@set -a; . .local/dev/stack.env; set +a; \
	 cargo run -q -p onecrm-admin -- express-poll --tenant $(TENANT)

express-report: tools
	@infra/require-dev.sh
	@set -a; . .local/dev/stack.env; set +a; \
	 cargo run -q -p onecrm-admin -- express-report --tenant $(TENANT) --last $(or $(LAST),1)

# The Express poll (release build, in one process) against the Rust Express sandbox and a
# private emulator, for each member count: time, members per second, peak RSS.
bench-poll: tools
	cargo build --release -q -p onecrm-admin -p express-sandbox
	.venv/bin/python infra/bench_poll.py --sizes $(or $(SIZES),10000,100000)

# The log list route (release build, in process) over 100k log records on a private emulator:
# p50, p95 and the slowest of 200 calls as the log screen makes them.
bench-logs: tools
	cargo build --release -q -p onecrm-admin
	infra/with-emulator.sh bash -c 'target/release/onecrm-admin seed-demo >/dev/null && \
	  target/release/onecrm-admin bench-logs --records $(or $(RECORDS),100000) --requests 200'

clean:
	cargo clean
	rm -rf .local
comma := ,
space := $(subst ,, )

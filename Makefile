# The two commands a newcomer needs: `make run` and `make test`. Both start
# their own private Postgres, ClickHouse, Dovecot and Postfix (scripts/services.sh), installing
# the Debian packages if they are missing; dev and test use separate ports
# and data directories under .local/.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin/helpdeskflow
SERVICES := scripts/services.sh

.PHONY: run test stop build vet check-deps check-alerts bench bench-analytics chaos clean-data

build:
	$(GO) build -o $(BIN) ./cmd/helpdeskflow

## run: Postgres + ClickHouse + Dovecot + Postfix (dev profile), then `helpdeskflow dev` with the embedded Kafka broker.
run: build
	$(SERVICES) start dev
	eval "$$($(SERVICES) env dev)" && exec $(BIN) dev

## test: Postgres + ClickHouse + Dovecot + Postfix (test profile), then vet, the import-boundary check, the
## Prometheus rules (promtool check and unit tests, installing promtool if missing) and every test with -race
## (among them the chaos suite's short run, chaos/, on the chaostest profile's own servers).
test:
	$(SERVICES) start test
	$(GO) vet ./...
	scripts/check-deps.sh
	scripts/check-alerts.sh
	eval "$$($(SERVICES) env test)" && $(GO) test -race -count=1 -timeout 30m ./...

## stop: stop every profile's servers (their data is kept).
stop:
	$(SERVICES) stop dev
	$(SERVICES) stop test
	$(SERVICES) stop bench
	$(SERVICES) stop chaos
	$(SERVICES) stop chaostest

## bench: end-to-end throughput and latency against baselines measured in the same run, on the
## bench profile's own servers with production durability (fsync, synchronous_commit and
## full_page_writes on), where pgbench runs too.
bench: build
	$(SERVICES) start bench
	eval "$$($(SERVICES) env bench)" && $(GO) run ./bench -out bench-results

## bench-analytics: the analytics phase alone (docs/analytics.md's queries on a million tickets'
## history); its first run seeds and projects that history (kept for later runs), so `make bench`
## leaves it out.
bench-analytics: build
	$(SERVICES) start bench
	eval "$$($(SERVICES) env bench)" && $(GO) run ./bench -phases analytics -out bench-results/analytics

## chaos: the chaos suite's full run (chaos/, README "Reliability"): the production shape as separate
## processes on the chaos profile's own servers (its data is deleted first, the servers stopped at the
## end), 50 kill -9 cycles, the broker and ClickHouse stopped for 60 s, Postgres restarted, a restore
## drill; exits non-zero on any loss, duplicate or non-linearizable history. Summary: .local/chaos-run/summary.md.
chaos: build
	$(GO) run ./cmd/chaos -bin $(BIN) -profile chaos -workdir .local/chaos-run

check-deps:
	scripts/check-deps.sh

## check-alerts: promtool checks deploy/prometheus/ and runs the alert rules' unit tests.
check-alerts:
	scripts/check-alerts.sh

## clean-data: stop and delete every profile's data.
clean-data:
	$(SERVICES) clean dev
	$(SERVICES) clean test
	$(SERVICES) clean bench
	$(SERVICES) clean chaos
	$(SERVICES) clean chaostest

# Warden's entry points. `make run` and `make test` do all set-up on a fresh machine.
.PHONY: run test bench load fuzz chaos fmt

# Run Warden on ./warden.yaml (built-in mock provider, no keys needed).
run:
	scripts/setup.sh
	cargo run --release -- serve --config warden.yaml

# Every check and test (fmt, clippy, unit, integration, client suites, the llama-server tier).
test:
	scripts/test.sh

# Criterion micro-benchmarks of the hot paths.
bench:
	scripts/setup.sh
	cargo bench --bench hot_paths --bench auth_policy --bench audit --bench limits --bench pii --bench audit_s3 --bench tools

# Load harness: mock provider directly and through Warden at fixed rates.
load:
	scripts/setup.sh
	benches/load/run.sh

# The property tests at a million cases per target (release build; NER excluded).
fuzz:
	scripts/setup.sh
	PROPTEST_CASES=$${PROPTEST_CASES:-1000000} cargo test --release --test properties -- --nocapture

# Faults under load for longer (CHAOS_SECONDS, CHAOS_SEED): Redis frozen, S3 and the
# provider killed, the IdP down; then records, slots and the audit log are checked.
chaos:
	scripts/setup.sh --with-python
	CHAOS_SECONDS=$${CHAOS_SECONDS:-120} cargo test --test chaos -- --nocapture

fmt:
	cargo fmt --all

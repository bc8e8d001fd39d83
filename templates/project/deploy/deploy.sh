#!/usr/bin/env bash
# Your deployment target goes here. .github/workflows/deploy.yml calls this script when a
# stage is assigned (tag NAME#STAGE#N, `mlopskit model promote`), after it has fetched the
# model and verified its md5 against dvc.lock:
#
#   deploy/deploy.sh MODEL_FILE STAGE ARTIFACT VERSION
#
# Replace the echo with what your team runs: upload to a bucket, push an image, call a
# model server's API... Credentials come from the job's environment, never from here.
# Other registry events (registration, unassignment, deprecation...) deploy nothing; to act
# on them, add deploy/on-event.sh (called as: EVENT ARTIFACT VERSION STAGE).
set -euo pipefail

model_file="$1"
stage="$2"
artifact="$3"
version="$4"

# To ship a container that serves the model (mlopskit serve: md5-verified, trusted types
# only, requests checked against data/schema.yaml), for example:
#   mlopskit serve "${artifact}#${stage}" --dockerfile Dockerfile.serve
#   docker build -f Dockerfile.serve -t "registry.example/${artifact}:${version}" .
#   docker push "registry.example/${artifact}:${version}"
# or run it on a host you control:
#   mlopskit serve "${artifact}#${stage}" --follow --log-dir /var/log/mlopskit

echo "deploy: ${artifact} ${version} (${model_file}) to ${stage}: nothing to do yet; edit deploy/deploy.sh"

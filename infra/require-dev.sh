#!/usr/bin/env bash
# For commands that look at the running local stack (make card, make logs): says clearly when
# there is none, instead of failing on a missing file or a refused connection.
env_file=.local/dev/stack.env
if [ ! -f "$env_file" ]; then
  echo "no local stack is running: start it with 'make dev' in another terminal, then try again" >&2
  exit 1
fi
endpoint=$(sed -n 's/^AWS_ENDPOINT_URL=//p' "$env_file")
if ! curl -s --max-time 2 -o /dev/null "$endpoint/moto-api/"; then
  echo "the local stack's emulator ($endpoint) does not answer: is 'make dev' still running?" >&2
  exit 1
fi

#!/usr/bin/env bash
# Regenerates the README picture: the real rendered screen of the deploy
# scenario at hop 2 (step 12), from `chainview --script … --frames 100x30`.
set -euo pipefail
cd "$(dirname "$0")/.."
frame=$(cargo run --quiet --release -- --script assets/scenarios/deploy.chainview --frames 100x30 \
  | awk '/^── frame after step 12 /{on=1; next} /^── frame after step 13 /{on=0} on')
python3 - "$frame" <<'PY'
import re, sys
frame = sys.argv[1].strip("\n")
readme = open("README.md").read()
block = "<!-- picture:start -->\n```\n$ chainview   # after pressing n to hop 2 (step 12 of the deploy scenario)\n" + frame + "\n```\n<!-- picture:end -->"
readme = re.sub(r"<!-- picture:start -->.*?<!-- picture:end -->", lambda m: block, readme, flags=re.S)
open("README.md", "w").write(readme)
PY
echo "README picture updated"

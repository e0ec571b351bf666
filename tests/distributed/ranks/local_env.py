"""Under `hubkit run --launcher local`: write the launcher's variables; rank 1 then fails and rank 0 waits for the
failure notice (SIGUSR1). Usage: local_env.py OUT"""

import json
import os
import sys
import time
from pathlib import Path

from hubkit.distributed import _faults

out = Path(sys.argv[1])
names = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
rank = int(os.environ["RANK"])
_faults.install()
(out / f"env_{rank}.json").write_text(json.dumps({n: os.environ.get(n) for n in names}))
if rank == 1:
    time.sleep(0.5)
    sys.exit(3)
deadline = time.monotonic() + 20
while not _faults.peer_failed() and time.monotonic() < deadline:
    time.sleep(0.05)
(out / f"notice_{rank}").write_text(str(_faults.peer_failed()))

"""``evr serve`` for the benches: a handler account and an API key made, then serve.

    EVR_DATA_DIR=... EVR_PORT=... .venv/bin/python bench/serve.py --pipeline ours|baseline

Settings come from the environment as for ``evr serve``. Before serving it makes the
account ``bench`` (password ``BENCH_PASSWORD``) and writes a fresh CAD API key to
``$EVR_DATA_DIR/bench-api-key``. ``--pipeline baseline`` runs aiortc's default
pipeline (bench/baseline_room.py) in the media workers instead of ours; everything
else (signalling, hub, database, workers) is the same code.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance import logs
from appliance.config import load_settings
from appliance.models import Role
from appliance.server import prepare, serve
from appliance.services.audit import Actor
from appliance.services.identity import accounts, api_keys
from media.workers import DEFAULT_FACTORY, WorkerPool

BENCH_USER = "loadhandler"
BENCH_PASSWORD = "a long passphrase for load tests"
FACTORIES = {"ours": DEFAULT_FACTORY, "baseline": "bench.baseline_room:BaselineRoom"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", choices=sorted(FACTORIES), default="ours")
    args = parser.parse_args()
    settings = load_settings()
    logs.configure(settings.log_format, settings.log_level)
    prepared = prepare(settings)
    with prepared.db.session() as session:
        if accounts.get_by_username(session, BENCH_USER) is None:
            user, _ = accounts.create_user(
                session, Actor("bench"), BENCH_USER, "Bench", {Role.HANDLER}, BENCH_PASSWORD
            )
            user.must_change_password = False
            session.add(user)
        _, key = api_keys.create(
            session, Actor("bench"), f"bench-{len(api_keys.list_keys(session))}"
        )
    (settings.data_dir / "bench-api-key").write_text(key)
    prepared.db.dispose()
    workers = max(1, settings.media_workers)
    serve(settings, WorkerPool(workers, FACTORIES[args.pipeline]))


if __name__ == "__main__":
    main()

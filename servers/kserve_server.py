"""KServe model servers: the CTR and Direct predictors and the HintQ transformer
(`servers/kserve_models.py`).

    predictor   : `ctr` (v1 rows -> probabilities; v2 BYTES tensor `rows` of JSON -> FP32
                  `probability`) and `direct` (v1 user contexts -> Direct lists)
    transformer : `hintq` (v1 HintQ requests -> answers): the HintQ path of `serving.hintq`,
                  scoring in process (or at the predictor with ctr_remote), Direct lists for
                  users the nearline job has not reached from the predictor

Locally, `aigq serve kserve --port P` runs the transformer on P and the predictor on P+1, both on
127.0.0.1 (KServe binds 0.0.0.0 itself: `bind_loopback` narrows it). In a cluster the same
module is the container entry point (`deploy/kserve/`):

    python -m servers.kserve_server predictor --http_port 8080
    python -m servers.kserve_server transformer --http_port 8080 --predictor_host hintq-predictor...

Importing kserve parses sys.argv: this entry point hands kserve an argv of its own before it
imports the model classes (and with them kserve).
"""

from __future__ import annotations

import argparse
import logging
import sys

from core.errors import AigqError


def build_parser() -> argparse.ArgumentParser:
    """The container entry point's arguments (deploy/kserve/ names them; tests parse those)."""
    parser = argparse.ArgumentParser(prog="python -m servers.kserve_server")
    parser.add_argument("role", choices=["predictor", "transformer"])
    parser.add_argument("--http_port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 inside a container)")
    parser.add_argument("--predictor_host", default="", help="transformer: host:port of the CTR predictor")
    parser.add_argument("--store", default="sqlite", help="transformer: feature store (sqlite | redis_postgres)")
    parser.add_argument("--workers", type=int, default=1)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sys.argv = sys.argv[:1]  # kserve parses argv at import: give it nothing of ours

    logging.getLogger("feast").setLevel(logging.ERROR)
    # imported only now, after argv is ours: kserve parses it at import
    import kserve
    from kserve.model_server import PredictorConfig

    from servers import kserve_models as km

    km.bind_loopback(args.host)
    km.harden_rest_app()
    try:
        if args.role == "predictor":
            models = [km.CTRPredictor(), km.DirectPredictor()]
            config = None
        else:
            models = [km.HintQTransformer(store=args.store)]
            config = (
                # the transformer calls the predictor itself (serving timeouts and circuits apply)
                PredictorConfig(predictor_host=args.predictor_host, predictor_protocol="v1")
                if args.predictor_host
                else None
            )
        # the server first: it publishes the predictor config that the transformer's load reads
        server = kserve.ModelServer(
            http_port=args.http_port,
            enable_grpc=False,
            workers=args.workers,
            predictor_config=config,
            enable_docs_url=True,
        )
        for m in models:
            m.load()
        if args.workers > 1 and args.role == "transformer":
            # loaded here to fail early with a clear error; each worker loads its own (pickling)
            models[0].stop()
    except AigqError as e:
        print(f"aigq serve kserve: error: {e}", file=sys.stderr)
        return 2
    server.start(models)
    return 0


if __name__ == "__main__":
    sys.exit(main())

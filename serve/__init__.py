"""``litevit serve``: artefact folders behind the KServe v2 / Triton HTTP inference protocol.

Endpoints (``{name}`` is the model's name, ``/versions/1`` may follow it; the one version is "1"):

    GET  /v2/health/live, /v2/health/ready       200, or 503 for ready while shutting down
    GET  /v2                                     server metadata
    GET  /v2/models/{name}, .../ready            model metadata (datatypes, shapes, -1 = any)
    POST /v2/models/{name}/infer                 JSON tensors, or the binary tensor extension
    POST /v2/models/{name}/image                 a JPEG/PNG body -> top-k classes (classifiers,
                                                 ``?top_k=5``) or a PNG label mask at the image's
                                                 size, pixel = 0-based class index (segmenters;
                                                 ``?palette=true`` adds the ADE20K colours)
    POST /v2/repository/index                    Triton's repository index: [{name, version,
                                                 state: READY, reason}] (what tritonclient's
                                                 get_model_repository_index calls)
    GET  /v2/models/stats, /v2/models/{name}/stats   Triton's statistics extension: inference_stats
                                                 (success, fail, queue, compute_input,
                                                 compute_infer, compute_output: count and ns) and
                                                 batch_stats per batch size
    GET  /metrics                                Prometheus text: requests, failures, latency,
                                                 batch sizes, queue depth, per model

A model is named after its manifest's model, or after its folder when two served artefacts hold
the same model. Errors are ``{"error": "one sentence"}`` with 400 (bad request), 404 (unknown model or route),
413 (body over ``--max-request-bytes``), 503 (shutting down) or 500 (the inference itself failed;
other requests carry on). Requests are batched per model (``serve.batching``). SIGTERM/SIGINT
drain the server: new requests get 503, requests in flight finish, then it exits with 0; a second
signal stops it at once.

A module a concern: ``models`` (served artefacts, KServe metadata), ``protocol`` (the v2 tensor
codec), ``images`` (the image endpoint), ``metrics`` (Prometheus), ``batching`` (dynamic
batching over runners), ``app`` (the Starlette routes), ``server`` (uvicorn, draining, the CLI),
``triton_repo`` (``litevit triton-repo``). ``--max-batch`` defaults to a TensorRT engine's
profile max batch (from its sidecar), else 8. Serving uses the runtime's runners, never the other
way round. The serving stack (Starlette on uvicorn) is the ``serve`` extra; like the runtime,
nothing here imports torch.
"""

from litevit.serve.server import SERVE_DESCRIPTION, configure_serve_parser, run_serve, serve

__all__ = ["SERVE_DESCRIPTION", "configure_serve_parser", "run_serve", "serve"]

"""Safe change on the request path: A/B variants, shadow calls, canaries with rollback.

* :mod:`.policy` — the route-file keys (``variants``, ``shadow``, ``canary``);
* :mod:`.assign` — sticky weighted assignment (rendezvous hashing);
* :mod:`.canary` — the sliding-window comparison of a canary with its baseline;
* :mod:`.rollouts` — every route's variants, the outcome feed and the rollback;
* :mod:`.shadow` — sampled background calls to shadow models.
"""

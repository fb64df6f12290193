"""The linear head (``--classifier linear``): an L2-regularized logistic regression on the standardized,
token-averaged sentence vector — the strong baseline beside the bag-of-words MLP.

Per training fold, the regularization strength ``C`` is chosen on that fold's dev split (the same stratified
split the MLP early-stops on), by dev log-loss over a fixed grid; the model fitted on the rest of the fold with
that ``C`` scores the test part. The test fold never takes part in the choice. With several ELMo layers the head
sees them side by side, ``[L * D]``: a linear model over them contains every weighting a scalar mix could learn.
"""

from __future__ import annotations

import numpy as np

#: The grid of inverse regularization strengths tried on every fold's dev split (log-spaced, half decades).
C_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)


def fit_linear(x: np.ndarray, labels: np.ndarray, fit_idx: np.ndarray, dev_idx: np.ndarray,
               grid: tuple = C_GRID) -> dict:
    """Fit the linear head on ``x[fit_idx]`` (``x [N, D]``) for every ``C`` of `grid`, keep the one with the lowest
    log-loss on ``x[dev_idx]`` (ties: the smaller C, the stronger regularization).

    Returns ``{"model", "c", "dev_loss", "dev_accuracy"}``; ``model.predict(x)`` gives class ids.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best: dict = {"dev_loss": np.inf}
    for c in sorted(grid):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        model.fit(x[fit_idx], labels[fit_idx])
        loss = float(log_loss(labels[dev_idx], model.predict_proba(x[dev_idx]), labels=model.classes_))
        if loss < best["dev_loss"] - 1e-9:
            acc = float((model.predict(x[dev_idx]) == labels[dev_idx]).mean())
            best = {"model": model, "c": c, "dev_loss": loss, "dev_accuracy": acc}
    return best

"""Forecasting real series: seqkit against statsmodels baselines, at the same CPU budget.

    python benchmarks/many_to_one_forecast.py --seeds 3 --budget 240 --threads 1
    python benchmarks/many_to_one_forecast.py --protocol train-only  # seqkit's old protocol, to compare
    python benchmarks/many_to_one_forecast.py --seeds 1 --series airpassengers --runs single  # a quick look

Series (real data nobody on the team wrote; nothing is downloaded). Each is written as a CSV
(``time,value``) under ``<--cache>/forecast/`` (default ``~/.cache/seqkit-bench``, never in the
repository), atomically:

- ``airpassengers``: monthly airline passengers 1949-1960 (Box & Jenkins series G, 144 points),
  the CSV shipped with seqkit-forecast; season m = 12.
- ``elnino``: statsmodels' ``elnino`` data set (monthly sea-surface temperature, one row per
  year with 12 month columns), melted to one monthly series 1950-01..2010-12 (732 points); m = 12.
- ``unemp``: the ``unemp`` column of statsmodels' ``macrodata`` (US unemployment rate, quarterly
  1959Q1..2009Q3, 203 points); m = 4.

Split, in time order: test = the last 2 seasons (24, 24, 8 points), validation = the 2 seasons
before it, training = everything before that. Two runs per series, H = 2 seasons:

- ``single``: one forecast of the whole test window (H steps) from the origin just before it.
- ``rolling``: a 1-step forecast of every test point, each from all true data before it.

Metrics (one function for every model, on the H test points): MAE, RMSE, MAPE %, sMAPE %
(200 |y - yhat| / (|y| + |yhat|)) and MASE = MAE / mean |y_t - y_{t-m}| over ALL data before the
first test point (training + validation; as statsmodels / Darts users compute it). MASE is the
headline. Validation scores use the same code with the data before the first validation point.

Baselines (statsmodels, ``pip install statsmodels``). Options are chosen by validation MASE
(fit on training, score the validation window with the run's own protocol); the chosen option is
then fit on training + validation for the test forecast:

- seasonal naive: yhat_t = y_{t-m}; single-shot repeats the last season before the origin.
- Holt-Winters: ``ExponentialSmoothing`` (estimated initialisation), additive trend, seasonal
  ``add`` or ``mul``, damped or not (4 variants).
- SARIMA: ``SARIMAX`` (p,1,q)(0,1,1,m) with (p,q) in {(0,1) the airline model, (1,0), (1,1)},
  each on the raw and on the log scale (log forecasts are exponentiated: the median), 6 variants.

Rolling 1-step: Holt-Winters is refit at every origin (expanding window); SARIMA is fit once
(at the first origin) and then filtered with its parameters fixed over the new observations
(``results.append(new, refit=False)``, one-step-ahead predictions), the usual way to run a state
space model forward. Each baseline's CPU time (``time.process_time``) covers its validation
choice and its test forecasts; a baseline stops trying further variants once it passes
``--budget``.

seqkit, ``--protocol refit`` (the default, and what the table in the config header shows): the
protocol the baselines get and practitioners (Darts, statsmodels users) use: choose the epoch
count on validation, retrain on the whole history before the test window, forecast with that model.

- fit A: ``python -m seqkit fit --config benchmarks/configs/forecast_real.yaml --config <layer>``
  with the series' csv_path, season, input_length = 3 seasons, horizon = H (single) or 1
  (rolling), val_size = test_size = H and ``--seed_everything=S`` for S in 0..--seeds-1; the layer
  holds a ModelCheckpoint on val_loss and a ``seqkit.TimeBudget`` (CPU clock). The best epoch e is
  the one with the lowest val_loss in the run's CSVLogger metrics.csv (validation every
  ``check_val_every_n_epoch`` epochs, so e + 1 is a multiple of it); its val_mase is the
  validation figure printed (and what ``--val-only`` reports).
- fit B: the same config, seed and overrides with ``--data.init_args.val_size=0`` (ForecastData
  then trains on everything before the test part), ``--trainer.max_epochs=e+1``, the cosine
  scheduler's ``T_max`` = e + 1 when the config uses CosineAnnealingLR, and
  ``--trainer.check_val_every_n_epoch=1`` with a ModelCheckpoint without a monitor (there is no
  val_loss); its ``last.ckpt`` is the model. The scaler and seqkit's own MASE denominator are then
  fit on training + validation, like the baselines' refit.
- ``python -m seqkit predict --ckpt_path <fit B's last.ckpt> --data.init_args.predict_on=test
  --prediction.output=<csv>`` (time, actual, forecast); the rows' times are asserted to be the test
  window, and the forecast is scored with the same metric code and denominator as the baselines.

CPU budget per run and seed: fit A's TimeBudget is (--budget - 25) / 2 (25 s: three process
start-ups and the predict); fit B's is --budget less what fit A's process used, less 12 s. If
fit B hits it before e + 1 epochs, it stops there (the log says "refit k/e+1 epochs").

``--protocol train-only`` (the protocol of the figures labelled so in the config header): fit A
only, with a TimeBudget of --budget - 15 s, and the predict from its best-val_loss checkpoint:
seqkit then never trains on the 2 seasons right before the test window (validation picks the
checkpoint, and its windows read validation points only as inputs). Its old figures were measured
with --budget 120 (a TimeBudget of 105 s, which every fit stayed inside).

seqkit's CPU time is ``getrusage(RUSAGE_CHILDREN)`` user + sys over all its processes (both fits
and the predict), start-up included. The recipe in the config was chosen on validation MASE only;
the trials are listed in the config header.

Output: one markdown table (seqkit MASE mean ± std over seeds, each baseline's MASE with its
CPU-s, the best baseline and the ratio seqkit / best; < 1 means seqkit wins), a line with the
budget, threads and load average, then every metric of every model.
"""

from __future__ import annotations

import argparse
import csv
import glob
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "configs", "forecast_real.yaml")
SERIES = ("airpassengers", "elnino", "unemp")
RUNS = ("single", "rolling")
SEASON = {"airpassengers": 12, "elnino": 12, "unemp": 4}
# per-series seqkit overrides beyond the config (chosen on validation; see the config header)
SEQKIT_EXTRA: dict[str, list[str]] = {"elnino": ["--model.head.init_args.autoregressive=false"]}
METRICS = ("mae", "rmse", "mape", "smape", "mase")


def _fail(message: str) -> None:
    print(f"many_to_one_forecast: {message}", file=sys.stderr)
    sys.exit(2)


def _need_statsmodels():
    try:
        import numpy as np  # noqa: F401
        import statsmodels.api as sm
    except ImportError:
        _fail("the baselines and two of the series need statsmodels: pip install statsmodels")
    return sm


# -- the series ---------------------------------------------------------------------------------
def _write_csv(path: str, times: list[str], values: list[float]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["time", "value"])
        writer.writerows((t, repr(float(v))) for t, v in zip(times, values))
    os.replace(tmp, path)


def _read_csv(path: str) -> tuple[list[str], list[float]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [r[0] for r in rows], [float(r[1]) for r in rows]


def build_series(cache: str) -> dict[str, str]:
    """Write the three series as time,value CSVs under ``cache``/forecast; return their paths."""
    root = os.path.join(cache, "forecast")
    paths = {name: os.path.join(root, f"{name}.csv") for name in SERIES}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    sm = _need_statsmodels()
    try:
        from seqkit_forecast.data import bundled_csv
    except ImportError:
        _fail("seqkit-forecast is not installed: pip install -e plugins/seqkit-forecast")
    os.makedirs(root, exist_ok=True)
    with open(bundled_csv(), newline="") as f:
        rows = list(csv.reader(f))[1:]
    _write_csv(paths["airpassengers"], [r[0] for r in rows], [float(r[1]) for r in rows])
    nino = sm.datasets.elnino.load_pandas().data
    months = [c for c in nino.columns if c != "YEAR"]
    if len(months) != 12:
        _fail(f"statsmodels' elnino data has columns {list(nino.columns)}, not YEAR + 12 months")
    times, values = [], []
    for _, row in nino.sort_values("YEAR").iterrows():
        for i, month in enumerate(months):
            times.append(f"{int(row['YEAR'])}-{i + 1:02d}")
            values.append(float(row[month]))
    _write_csv(paths["elnino"], times, values)
    macro = sm.datasets.macrodata.load_pandas().data
    _write_csv(paths["unemp"], [f"{int(y)}Q{int(q)}" for y, q in zip(macro["year"], macro["quarter"])],
               list(macro["unemp"]))
    return paths


# -- metrics ------------------------------------------------------------------------------------
def mase_scale(history, m: int) -> float:
    """mean |y_t - y_{t-m}| over ``history`` (all data before the first scored point)."""
    return statistics.fmean(abs(history[t] - history[t - m]) for t in range(m, len(history)))


def score(actual, forecast, scale: float) -> dict[str, float]:
    err = [f - a for a, f in zip(actual, forecast)]
    mae = statistics.fmean(abs(e) for e in err)
    return {
        "mae": mae,
        "rmse": math.sqrt(statistics.fmean(e * e for e in err)),
        "mape": 100 * statistics.fmean(abs(e) / abs(a) for e, a in zip(err, actual)),
        "smape": 100 * statistics.fmean(2 * abs(e) / (abs(a) + abs(f)) for e, a, f in zip(err, actual, forecast)),
        "mase": mae / scale,
    }


# -- baselines ----------------------------------------------------------------------------------
def _snaive(y, origin: int, H: int, m: int, run: str) -> list[float]:
    if run == "single":
        return [y[origin - m + (h % m)] for h in range(H)]
    return [y[t - m] for t in range(origin, origin + H)]


def _hw_fit(hist, m: int, variant: tuple[str, bool]):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal, damped = variant
    return ExponentialSmoothing(hist, trend="add", seasonal=seasonal, seasonal_periods=m, damped_trend=damped,
                                initialization_method="estimated").fit()


def _hw(y, origin: int, H: int, m: int, run: str, variant) -> list[float]:
    import numpy as np

    if run == "single":
        return list(_hw_fit(np.asarray(y[:origin]), m, variant).forecast(H))
    return [float(_hw_fit(np.asarray(y[:t]), m, variant).forecast(1)[0]) for t in range(origin, origin + H)]


def _sarima(y, origin: int, H: int, m: int, run: str, variant) -> list[float]:
    import numpy as np
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    (p, q), log = variant
    z = np.log(np.asarray(y, dtype=float)) if log else np.asarray(y, dtype=float)
    res = SARIMAX(z[:origin], order=(p, 1, q), seasonal_order=(0, 1, 1, m)).fit(disp=False)
    if run == "single":
        out = np.asarray(res.forecast(H))
    else:  # fixed parameters, filtered over the true points: one-step-ahead predictions
        res = res.append(z[origin : origin + H], refit=False)
        out = np.asarray(res.predict(start=origin, end=origin + H - 1))
    return list(np.exp(out) if log else out)


def _hw_variants(y):
    return [(s, d) for s in ("add", "mul") for d in (False, True) if s == "add" or min(y) > 0]


def _sarima_variants(y):
    return [(pq, log) for log in (False, True) for pq in ((0, 1), (1, 0), (1, 1)) if not log or min(y) > 0]


def _variant_name(kind: str, variant) -> str:
    if kind == "hw":
        return f"{variant[0]}{', damped' if variant[1] else ''}"
    (p, q), log = variant
    return f"({p},1,{q})(0,1,1){' log' if log else ''}"


def baseline(kind: str, y, m: int, H: int, run: str, budget: float) -> dict:
    """Test metrics, CPU seconds and the validation choice of one baseline."""
    import numpy as np

    n = len(y)
    val_origin, test_origin = n - 2 * H, n - H
    start = time.process_time()
    if kind == "snaive":
        variants, fn = [None], (lambda y_, o, v: _snaive(y_, o, H, m, run))
    elif kind == "hw":
        variants, fn = _hw_variants(y), (lambda y_, o, v: _hw(y_, o, H, m, run, v))
    else:
        variants, fn = _sarima_variants(y), (lambda y_, o, v: _sarima(y_, o, H, m, run, v))
    best, chosen = None, None
    val_scale = mase_scale(y[:val_origin], m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from statsmodels' optimisers
        if len(variants) > 1:
            for v in variants:
                if chosen is not None and time.process_time() - start > budget:
                    break
                try:
                    val = score(y[val_origin:test_origin], fn(y[:test_origin], val_origin, v), val_scale)["mase"]
                except (ValueError, np.linalg.LinAlgError) as e:  # a variant that does not fit is skipped
                    print(f"  {kind} {_variant_name(kind, v)}: skipped ({type(e).__name__}: {e})", flush=True)
                    continue
                if best is None or val < best:
                    best, chosen = val, v
        else:
            chosen = variants[0]
        forecast = fn(y, test_origin, chosen)
    cpu = time.process_time() - start
    metrics = score(y[test_origin:], forecast, mase_scale(y[:test_origin], m))
    label = "" if kind == "snaive" else f"{_variant_name(kind, chosen)}, val MASE {best:.3f}"
    return {"metrics": metrics, "cpu": cpu, "chosen": label}


# -- seqkit -------------------------------------------------------------------------------------
def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _seqkit(args: list[str], env: dict[str, str]) -> None:
    run = subprocess.run([sys.executable, "-m", "seqkit", *args], env=env, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        tail = "\n".join(line for line in run.stderr.strip().splitlines()[-15:])
        _fail(f"seqkit {args[0]} failed (exit {run.returncode}):\n{tail}")


def _best_val(metrics_csv: str) -> tuple[float, int]:
    """val_mase and epoch (0-based) at the lowest val_loss (what ModelCheckpoint kept: the first of
    equal minima). seqkit's MASE denominator is the training part's: the same as this script's
    validation denominator."""
    with open(metrics_csv) as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_loss")]
    if not rows:
        _fail(f"{metrics_csv} has no val_loss row (did the fit stop before its first validation check?)")
    best = min(rows, key=lambda r: float(r["val_loss"]))
    return float(best["val_mase"]), int(float(best["epoch"]))


def _config_value(*keys: str):
    """A value of the benchmark config (e.g. "lr_scheduler", "init_args", "T_max"); None if absent."""
    import yaml

    with open(CONFIG) as f:
        node = yaml.safe_load(f)
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _read_prediction(pred: str) -> dict:
    with open(pred, newline="") as f:
        rows = list(csv.DictReader(f))
    return {"times": [r["time"] for r in rows], "actual": [float(r["actual"]) for r in rows],
            "forecast": [float(r["forecast"]) for r in rows]}


def seqkit_run(path: str, m: int, H: int, run: str, seed: int, budget: float, work: str, threads: int,
               extra: list[str], val_only: bool = False, protocol: str = "refit",
               test_times: list[str] | None = None) -> dict:
    """Test metrics (and validation MASE) and CPU seconds of one seed.

    Fit A trains on the training part (val_size = test_size = H) and is checked on validation;
    ``train-only`` predicts the test window from its best-val_loss checkpoint. ``refit`` reads the
    best epoch e from fit A's metrics.csv, then fit B trains the same config and seed for e + 1
    epochs (cosine T_max too) on everything before the test part (val_size 0) and predicts from
    fit B's last checkpoint."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    refit = protocol == "refit" and not val_only
    # CPU budget: train-only gives fit A all of it but 15 s (start-up and predict); refit gives fit A
    # half of what is left after three start-ups, and fit B what fit A did not use (less 12 s for its
    # start-up and the predict). TimeBudget counts from fit start, so start-ups are outside it.
    budget_a = max((budget - 25) / 2 if protocol == "refit" else budget - 15, 5)  # --val-only: the same fit A

    def layer(file: str, checkpoint: str, seconds: float) -> str:
        with open(file, "w") as f:  # replaces the config's callbacks (a later list replaces the first)
            f.write("trainer:\n  callbacks:\n"
                    f"    - class_path: ModelCheckpoint\n      init_args: {checkpoint}\n"
                    "    - class_path: seqkit.TimeBudget\n"
                    f"      init_args: {{seconds: {seconds:.0f}, clock: cpu}}\n")
        return file

    name = f"{os.path.basename(path)[:-4]}-{run}-seed{seed}"
    data = [f"--data.init_args.csv_path={path}", f"--data.init_args.season={m}",
            f"--data.init_args.input_length={3 * m}", f"--data.init_args.horizon={H if run == 'single' else 1}",
            f"--data.init_args.test_size={H}"]
    log = [f"--trainer.logger.init_args.save_dir={work}", "--trainer.enable_progress_bar=false"]
    before = _children_cpu()
    layer_a = layer(os.path.join(work, "budget-a.yaml"), "{monitor: val_loss, mode: min}", budget_a)
    _seqkit(["fit", "--config", CONFIG, "--config", layer_a, f"--seed_everything={seed}", *data,
             f"--data.init_args.val_size={H}", *extra, *log, f"--trainer.logger.init_args.name={name}"], env)
    version = os.path.join(work, name, "version_0")
    val_mase, best_epoch = _best_val(os.path.join(version, "metrics.csv"))
    out = {"val_mase": val_mase, "best_epoch": best_epoch}
    if val_only:
        out["cpu"] = _children_cpu() - before
        return out
    if refit:
        epochs = best_epoch + 1
        budget_b = max(budget - (_children_cpu() - before) - 12, 5)
        # no monitor (there is no val_loss): the plain latest-epoch checkpoint. `{}` would not do: a later
        # layer's init_args merge into the config's (monitor: val_loss stays and nothing is saved)
        layer_b = layer(os.path.join(work, "budget-b.yaml"), "{monitor: null}", budget_b)
        sched = []
        if str(_config_value("lr_scheduler", "class_path") or "").endswith("CosineAnnealingLR"):
            sched = [f"--lr_scheduler.init_args.T_max={epochs}"]
        # fit B's own arguments come after the --override ones (a trial's max_epochs must not undo e + 1)
        _seqkit(["fit", "--config", CONFIG, "--config", layer_b, f"--seed_everything={seed}", *data, *extra,
                 "--data.init_args.val_size=0", f"--trainer.max_epochs={epochs}",
                 "--trainer.check_val_every_n_epoch=1", *sched, *log,
                 f"--trainer.logger.init_args.name={name}-refit"], env)
        ckpt_dir = os.path.join(work, f"{name}-refit", "version_0", "checkpoints")
        last = os.path.join(ckpt_dir, "last.ckpt")
        if not os.path.exists(last):
            _fail(f"seqkit fit (refit) wrote no last.ckpt under {ckpt_dir}")
        ckpt = last
        with open(os.path.join(work, f"{name}-refit", "version_0", "metrics.csv")) as f:
            logged = [int(float(r["epoch"])) for r in csv.DictReader(f) if r.get("epoch")]
        out["epochs_b"] = (max(logged) + 1) if logged else 0  # epochs fit B finished (< epochs: budget hit)
        out["epochs_target"] = epochs
    else:
        ckpts = sorted(glob.glob(os.path.join(version, "checkpoints", "*.ckpt")))
        best = [c for c in ckpts if not c.endswith("last.ckpt")] or ckpts
        if not best:
            _fail(f"seqkit fit wrote no checkpoint under {version}")
        ckpt = best[0]
    pred = os.path.join(work, f"{name}.csv")
    _seqkit(["predict", f"--ckpt_path={ckpt}", "--data.init_args.predict_on=test", f"--prediction.output={pred}",
             *log, f"--trainer.logger.init_args.name={name}-predict"], env)
    out["cpu"] = _children_cpu() - before
    out.update(_read_prediction(pred))
    if test_times is not None:  # the forecast must cover exactly the test window, whichever fit made it
        assert out["times"] == test_times, (
            f"{protocol} prediction times {out['times'][:1]}..{out['times'][-1:]} ({len(out['times'])} rows) "
            f"are not the test window {test_times[0]}..{test_times[-1]} ({len(test_times)} points)")
    return out


def _mean_std(xs: list[float], digits: int = 3) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.{digits}f} ± {sd:.{digits}f}"


# -- the benchmark ------------------------------------------------------------------------------
def main(args: argparse.Namespace) -> None:
    _need_statsmodels()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    series = getattr(args, "series", None) or list(SERIES)
    runs = getattr(args, "runs", None) or list(RUNS)
    extra, val_only = list(getattr(args, "override", None) or []), bool(getattr(args, "val_only", False))
    protocol = getattr(args, "protocol", None) or "refit"
    paths = build_series(os.path.expanduser(args.cache))
    rows, details = [], []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="seqkit-forecast-bench-") as work:
        for name in series:
            times, y = _read_csv(paths[name])
            m = SEASON[name]
            H = 2 * m
            print(f"{name}: {len(y)} points {times[0]}..{times[-1]}, season {m}; train {len(y) - 2 * H}, "
                  f"val {H} (from {times[-2 * H]}), test {H} (from {times[-H]}) [{paths[name]}]", flush=True)
            for run in runs:
                base = {}
                for kind in ("snaive", "hw", "sarima") if not val_only else ():  # val-only: no test figures at all
                    base[kind] = baseline(kind, y, m, H, run, args.budget)
                    b = base[kind]
                    print(f"  {run} {kind}: test MASE {b['metrics']['mase']:.3f} in {b['cpu']:.1f} CPU-s"
                          f"{' (' + b['chosen'] + ')' if b['chosen'] else ''}", flush=True)
                results = []
                for seed in range(args.seeds):
                    r = seqkit_run(paths[name], m, H, run, seed, args.budget, work, args.threads,
                                   SEQKIT_EXTRA.get(name, []) + extra, val_only, protocol, times[-H:])
                    if not val_only:
                        if r["times"] != times[-H:] or any(abs(a - b) > 1e-6 * max(1.0, abs(b))
                                                           for a, b in zip(r["actual"], y[-H:])):
                            _fail(f"seqkit predict's test part ({r['times'][:1]}..{r['times'][-1:]}, "
                                  f"{len(r['times'])} rows) is not the last {H} points of {paths[name]}")
                        r["metrics"] = score(y[-H:], r["forecast"], mase_scale(y[:-H], m))
                    results.append(r)
                    test = f"test MASE {r['metrics']['mase']:.3f}, " if not val_only else ""
                    refit = (f", refit {r['epochs_b']}/{r['epochs_target']} epochs" if "epochs_b" in r else "")
                    print(f"  {run} seqkit seed {seed}: {test}val MASE {r['val_mase']:.3f} (fit A best epoch "
                          f"{r['best_epoch']}{refit}) in {r['cpu']:.0f} CPU-s "
                          f"({time.monotonic() - started:.0f} s elapsed)", flush=True)
                if val_only:
                    print(f"  {run} seqkit val MASE {_mean_std([r['val_mase'] for r in results])}", flush=True)
                    continue
                mase = [r["metrics"]["mase"] for r in results]
                cpu = statistics.mean(r["cpu"] for r in results)
                best_kind = min(base, key=lambda k: base[k]["metrics"]["mase"])
                best = base[best_kind]["metrics"]["mase"]
                label = {"snaive": "seasonal naive", "hw": "Holt-Winters", "sarima": "SARIMA"}
                cell = {k: f"{base[k]['metrics']['mase']:.3f} ({base[k]['cpu']:.1f} s)" for k in base}
                rows.append(f"| {name} | {run} | {_mean_std(mase)} ({cpu:.0f} s) | {cell['snaive']} | {cell['hw']} | "
                            f"{cell['sarima']} | {label[best_kind]} {best:.3f} | {statistics.mean(mase) / best:.2f} |")
                for k in base:
                    details.append((name, run, label[k] + (f" {base[k]['chosen']}" if base[k]["chosen"] else ""),
                                    {key: f"{v:.3f}" for key, v in base[k]["metrics"].items()}))
                details.append((name, run, f"seqkit ({args.seeds} seeds)",
                                {key: _mean_std([r["metrics"][key] for r in results]) for key in METRICS}))
    if val_only:
        return
    print()
    print("| series | run | seqkit MASE (CPU-s) | seasonal naive | Holt-Winters | SARIMA | best baseline "
          "| ratio seqkit/best |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("MASE on the test window (lower is better); CPU-s per run in brackets (seqkit: mean per seed, "
          f"fit(s) + predict; protocol {protocol}). "
          f"budget {args.budget:.0f} CPU-s per run, {args.threads} thread(s), {args.seeds} seed(s); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {time.monotonic() - started:.0f} s wall")
    print()
    print("| series | run | model | MAE | RMSE | MAPE % | sMAPE % | MASE |")
    print("|---|---|---|---|---|---|---|---|")
    for name, run, model, mt in details:
        print(f"| {name} | {run} | {model} | " + " | ".join(mt[k] for k in METRICS) + " |")


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seqkit seeds (default: 3)")
    parser.add_argument("--budget", type=float, default=240.0, help="CPU-seconds per run, each side (default: 240)")
    parser.add_argument("--protocol", choices=("refit", "train-only"), default="refit",
                        help="seqkit: refit = choose the epoch count on validation, retrain on all data before "
                             "the test window and forecast with that model (default); train-only = forecast with "
                             "the best-val_loss checkpoint of the fit on the training part")
    parser.add_argument("--threads", type=int, default=1, help="threads per process (default: 1)")
    parser.add_argument("--cache", default="~/.cache/seqkit-bench", help="where the series CSVs are written")
    parser.add_argument("--series", nargs="+", choices=SERIES, help="only these series (default: all)")
    parser.add_argument("--runs", nargs="+", choices=RUNS, help="only these runs (default: both)")
    parser.add_argument("--override", action="append", metavar="ARG",
                        help="an extra `seqkit fit` argument, e.g. --override=--model.ensemble=3 (for trials)")
    parser.add_argument("--val-only", action="store_true",
                        help="seqkit: fit and print validation MASE only, no test forecast (for choosing a recipe)")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.budget <= 0 or args.threads < 1:
        _fail("--seeds and --threads must be >= 1 and --budget > 0")
    return args


if __name__ == "__main__":
    main(_parse())

"""bench/serve_overload.py: its flags, and a tiny smoke run (a real server, under a second a
level) that prints one table row per factor with the columns filled, then the hot reload's
three windows, with version 2 answering."""

import re

from tests.bench.test_benches import load


def test_the_overload_bench_builds_its_parser():
    module = load("serve_overload")
    assert module.build_parser().description == module.__doc__.splitlines()[0]
    args = module.build_parser().parse_args([])
    assert (args.factors, args.max_queue, args.seconds) == ("0.5,1,2,4", 32, 10.0)
    assert (args.reload, args.costs, args.poll_seconds, args.workers) == (True, True, 0.5, 1)
    assert module.build_parser().parse_args(["--no-reload"]).reload is False
    assert args.access_log is False


def test_the_overload_bench_smoke_run(capsys):
    module = load("serve_overload")
    assert module.main(["--seconds", "0.4", "--factors", "0.5,4", "--capacity-concurrency",
                        "4", "--max-queue", "4", "--beam", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("capacity: ") and "--max-queue 4" in lines[0]
    assert lines[0].endswith("beam 2, access log off")
    rows = [line for line in lines if line.startswith("| 0.5x") or line.startswith("| 4x")]
    assert len(rows) == 2
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 10 and float(cells[1]) > 0
        assert cells[6] == "0"  # no status but 200 and 503, no client error
        assert float(cells[7].split()[0]) > 10  # the server's RSS in MiB
        assert float(cells[8]) > 0  # the server's CPU, in cores
    costs = next(line for line in lines if line.startswith("server CPU per answer"))
    per_answer, per_refusal = re.search(r"capacity: ([\d.]+) ms; per 503: (\d+) µs", costs).groups()
    assert float(per_answer) > 0 and int(per_refusal) > 0
    # The hot reload: version 2 put in place mid-run answered, and nothing failed but (on a
    # loaded machine) a 503 from the queue bound: no 5xx, no 404, no client error.
    windows = [line for line in lines if line.startswith(("| before", "| during", "| after"))]
    assert len(windows) == 3
    assert int(windows[2].split("|")[2]) > 0  # answered by version 2
    for window in windows:
        assert re.fullmatch(r"0|\d+ × 503", window.split("|")[4].strip()), window
    assert any(line.startswith("- placed → ") and "version 2: never" not in line
               for line in lines)


def test_the_overload_bench_with_the_access_log_on(capsys):
    module = load("serve_overload")
    assert module.main(["--seconds", "0.3", "--factors", "4", "--max-queue", "2", "--access-log",
                        "--no-reload"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("access log on")
    row = next(line for line in lines if line.startswith("| 4x"))
    assert row.split("|")[7].strip() == "0"  # nothing but 200s and 503s
    assert any(line.startswith("server CPU per answer") for line in lines)

"""The export check: limits for float and quantized artifacts, and the report files."""

import json

from export import verify


def rows(float_diff, quantized_accuracy):
    return [
        {"artifact": "keras", "quantized": False, "max_abs_diff": 0.0, "accuracy": 0.80,
         "size_bytes": None, "label_agreement": 1.0},
        {"artifact": "onnx", "quantized": False, "max_abs_diff": float_diff, "accuracy": 0.80,
         "size_bytes": 2048, "label_agreement": 1.0,
         "latency_ms": {"batch1_p50": 1.0, "batch1_p95": 2.0, "batch32_p50": 3.0,
                        "batch32_p95": 4.0}},
        {"artifact": "tflite_int8", "quantized": True, "max_abs_diff": 0.02,
         "accuracy": quantized_accuracy, "size_bytes": 1024, "label_agreement": 0.99},
    ]


def test_within_limits_passes():
    assert verify.failures(rows(5e-5, 0.795)) == []


def test_float_artifact_over_1e4_fails():
    problems = verify.failures(rows(2e-4, 0.80))
    assert problems == ["onnx differs from Keras by 2.00e-04 (limit 1e-04)"]


def test_quantized_artifact_losing_more_than_a_point_fails():
    problems = verify.failures(rows(0.0, 0.785))
    assert problems == ["tflite_int8 loses 1.5 points of accuracy (limit 1)"]


def test_report_files(tmp_path):
    text = verify.write_report(tmp_path, rows(1e-7, 0.8), examples=200)
    assert "| onnx | 2 KiB | 1.0e-07 | 1.0000 | 0.8000 | 1.00 / 2.00 | 3.0 / 4.0 |" in text
    report = json.loads((tmp_path / "export_report.json").read_text())
    assert report["examples"] == 200 and len(report["artifacts"]) == 3
    assert (tmp_path / "export_report.md").read_text().strip() == text.strip()

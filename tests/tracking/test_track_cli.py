"""``deepnotes track`` on a shapes sequence and on a MOTChallenge folder; its errors."""

from __future__ import annotations

import json

import numpy as np

from deepnotes.cli import main
from deepnotes.tracking import mot_metrics, read_mot


def test_track_shapes_sequence_writes_tracks_metrics_and_strip(tmp_path):
    out = tmp_path / "t"
    assert main(["track", "--data", "shapes-seq", "--frames", "12", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["idf1"] <= 1.0 and (out / "strip.png").is_file()
    assert len(read_mot(out / "tracks.txt")) > 0


def _mot_folder(tmp_path, det_text: str, gt_text: str | None):
    seq = tmp_path / "seq"
    (seq / "det").mkdir(parents=True)
    (seq / "det" / "det.txt").write_text(det_text)
    if gt_text is not None:
        (seq / "gt").mkdir()
        (seq / "gt" / "gt.txt").write_text(gt_text)
    return seq


def test_track_mot_folder_scores_against_its_ground_truth(tmp_path):
    g = np.random.default_rng(0)
    det_lines, gt_lines = [], []
    for f in range(1, 16):
        for oid, (x0, vx) in enumerate(((10, 3), (200, -3)), start=1):
            x = x0 + vx * f
            gt_lines.append(f"{f},{oid},{x},50,30,60,1,1,1")
            dx = g.normal(0, 1)
            det_lines.append(f"{f},-1,{x + dx:.2f},50,30,60,0.9,-1,-1,-1")
    seq = _mot_folder(tmp_path, "\n".join(det_lines), "\n".join(gt_lines))
    out = tmp_path / "o"
    assert main(["track", "--data", f"mot:{seq}", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    expected = mot_metrics(read_mot(seq / "gt" / "gt.txt"), read_mot(out / "tracks.txt"))
    assert metrics["idf1"] == expected["idf1"] and metrics["num_switches"] == 0


def test_track_mot_folder_without_detections_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["track", "--data", f"mot:{tmp_path / 'empty'}", "--out", str(tmp_path / "o")]) == 2
    assert "no det/det.txt" in capsys.readouterr().err


def test_track_malformed_mot_file_names_the_line(tmp_path, capsys):
    seq = _mot_folder(tmp_path, "1,-1,0,0,5,5\n1,-1,0,0,five,5\n", None)
    assert main(["track", "--data", f"mot:{seq}", "--out", str(tmp_path / "o")]) == 2
    assert "det.txt:2: expected comma-separated numbers" in capsys.readouterr().err


def test_track_unknown_data_is_an_error(tmp_path, capsys):
    assert main(["track", "--data", "kitti", "--out", str(tmp_path / "o")]) == 2
    assert "--data must be 'shapes-seq' or 'mot:PATH'" in capsys.readouterr().err

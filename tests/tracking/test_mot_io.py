"""MOTChallenge file reading / writing and its errors (each naming the file line)."""

from __future__ import annotations

import numpy as np
import pytest

from deepnotes.tracking.mot_io import read_mot, write_mot


def test_round_trip(tmp_path):
    rows = np.array([[1, 1, 10.5, 20, 30, 40, 1, -1, -1, -1], [2, 1, 11, 21, 30, 40, 1, -1, -1, -1]])
    write_mot(tmp_path / "t.txt", rows)
    np.testing.assert_array_equal(read_mot(tmp_path / "t.txt"), rows)


def test_short_rows_are_padded(tmp_path):
    (tmp_path / "g.txt").write_text("1,3,0,0,5,5\n")
    assert read_mot(tmp_path / "g.txt").tolist() == [[1, 3, 0, 0, 5, 5, -1, -1, -1, -1]]


def test_detections_may_share_id_minus_one(tmp_path):
    (tmp_path / "det.txt").write_text("1,-1,0,0,5,5,0.9\n1,-1,9,9,5,5,0.8\n")
    assert len(read_mot(tmp_path / "det.txt", detections=True)) == 2


def _bad(tmp_path, text):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    return p


def test_malformed_line_names_file_and_line(tmp_path):
    p = _bad(tmp_path, "1,1,0,0,5,5\n1,2,zero,0,5,5\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected comma-separated numbers"):
        read_mot(p)


def test_too_few_fields(tmp_path):
    with pytest.raises(ValueError, match=r"bad.txt:1: expected at least 6 fields"):
        read_mot(_bad(tmp_path, "1,1,0,0,5\n"))


def test_unsorted_frames(tmp_path):
    with pytest.raises(ValueError, match=r"bad.txt:2: frame 1 comes after frame 2"):
        read_mot(_bad(tmp_path, "2,1,0,0,5,5\n1,1,0,0,5,5\n"))


def test_duplicate_frame_id(tmp_path):
    with pytest.raises(ValueError, match=r"bad.txt:2: second row for frame 1, id 1"):
        read_mot(_bad(tmp_path, "1,1,0,0,5,5\n1,1,3,3,5,5\n"))


def test_non_positive_size(tmp_path):
    with pytest.raises(ValueError, match=r"bad.txt:1: width and height must be positive"):
        read_mot(_bad(tmp_path, "1,1,0,0,0,5\n"))


def test_bad_frame_number(tmp_path):
    with pytest.raises(ValueError, match=r"bad.txt:1: frame must be a positive integer"):
        read_mot(_bad(tmp_path, "0.5,1,0,0,5,5\n"))

"""PASCAL-VOC boxes: every object read with its four edges; a box without them refused."""

from __future__ import annotations

import pytest

from crossmodal.io.voc import read_voc_boxes

VOC = """<annotation><filename>x</filename>
<object><name>A</name><bndbox><xmin>10</xmin><ymin>20.0</ymin><xmax>30</xmax><ymax>44</ymax></bndbox></object>
<object><name>B</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>
</annotation>"""


def test_every_object_is_read_with_its_edges(tmp_path):
    path = tmp_path / "1.2.3.xml"
    path.write_text(VOC)
    assert read_voc_boxes(path) == [{"label": "A", "xmin": 10, "ymin": 20, "xmax": 30, "ymax": 44},
                                    {"label": "B", "xmin": 1, "ymin": 2, "xmax": 3, "ymax": 4}]


def test_a_box_without_its_edges_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text(VOC.replace("<ymax>4</ymax>", ""))
    with pytest.raises(ValueError, match="broken.xml: an <object> without"):
        read_voc_boxes(path)

"""Downstream utility eval (`synthloop eval utility`): train a small detector on synthloop data, test it on
held-out real objects, and compare the ways of making the data. See `run.py` for the steps, `detector.py` for
the model, `coco_eval.py` for scoring and intervals, `data.py` for the arms' data, `report.py` for the output."""

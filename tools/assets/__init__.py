"""The asset library: real object cut-outs (the user's, cut from the user's COCO data, installed libraries such
as Tux Paint stamps and openclipart), indexed once and cached, matched to class names, with per-class coverage."""

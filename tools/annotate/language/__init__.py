"""Language labels (captions, referring expressions, scene-graph relations) grounded in the layout."""

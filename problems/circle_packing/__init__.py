"""circle_packing: 26 circles in the unit square, maximise the sum of radii (a problem folder)."""

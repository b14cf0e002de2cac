"""Round trips with labeling tools: export items as Label Studio / COCO / CSV files, import corrected labels."""

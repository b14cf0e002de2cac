"""Fixing what the analysis finds: tags, review state and labels on points, with an undoable history."""

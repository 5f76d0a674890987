"""leadrules: behaviour-based lead scoring and nurture rules engine."""

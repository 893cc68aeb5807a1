"""Call handlers', supervisors' and evidence officers' pages: incidents, the
console, the officer's record, RVR, evidence, the board, the evaluation."""

"""Pure rules of analytics: the formulas shops measure their programme by."""

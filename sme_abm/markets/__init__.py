"""Markets: goods (demand, procurement, exports, receivables), credit and capital."""

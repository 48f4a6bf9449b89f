"""Book tables and figures, one module per chapter. Never imported by ``stages`` or the
library: the report layer reads stage outputs, it computes nothing the stages need."""

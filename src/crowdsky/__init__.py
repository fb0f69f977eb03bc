"""crowdsky: clock-aligned time-block stacking on ZWO Seestar telescopes."""

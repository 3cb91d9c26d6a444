"""Course simulation: a scripted patient's weekly reviews, replayed under the
current rules (``replay``), and the milestones a course reaches."""

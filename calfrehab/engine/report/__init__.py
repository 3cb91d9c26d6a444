"""The course report and the patient handout: self-contained HTML files
built from a case, its decision and (for the report) the audit trail."""

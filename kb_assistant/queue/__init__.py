"""The human queue: unanswered questions become tickets, agents answer them, answers reach the user and the KB."""

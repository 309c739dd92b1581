"""Answer-quality evaluation: dataset adapters, metrics and reports. Calls the same Assistant.ask as the chat."""

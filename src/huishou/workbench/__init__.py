"""The collector workbench: a web app where collectors work the day's list and record every contact, team
leads follow the day, and the recorded contacts flow back into collection_actions for tomorrow's plan."""

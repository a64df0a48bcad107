"""The course tools: student handouts (handout.py) and the grader (grading.py); `python -m minitorchnn.course`."""

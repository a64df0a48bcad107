"""python -m minitorchnn.course: `student` writes the handouts, `grade` scores submissions."""
from .handout import main

raise SystemExit(main())

"""The second opinion in the window: controller (jobs and answers), panel, model worker, heat-map layer."""

import { generatedClip } from '../bench/inputs.js';
console.log(await generatedClip({ width: 1920, height: 1080, seconds: 120, fps: 30 }));
